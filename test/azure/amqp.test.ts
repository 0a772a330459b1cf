/**
 * adapters/azure/amqp.ts against the SDK itself: for messages of every shape cloudmom sends,
 * its bytes are the ones `tryAddMessage` stores, and a link batch filled by LinkBatchWriter is
 * the batch the SDK fills (size, count, what the peer receives).
 */
import { randomUUID } from 'node:crypto';
import {
  ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusMessageBatch,
} from '@azure/service-bus';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { encodeServiceBusMessage, LinkBatchWriter } from '../../adapters/azure/amqp.ts';
import { toServiceBusMessage } from '../../adapters/azure/wire.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString);
const queue = `amqp-${randomUUID().slice(0, 8)}`;
const sender = client.createSender(queue);
afterAll(async () => {
  await sender.close();
  await client.close();
});

/** What the SDK stores for `m` in a fresh batch (as the first and as a later message). */
async function sdkBytes(m: ServiceBusMessage): Promise<Buffer[]> {
  const batch = await sender.createMessageBatch();
  expect(batch.tryAddMessage(m)).toBe(true);
  expect(batch.tryAddMessage(m)).toBe(true);
  return (batch as unknown as { _encodedMessages: Buffer[] })._encodedMessages;
}

const base: OutgoingMessage = {
  body: Buffer.from('{"a":1}'),
  target: 'orders.created',
  messageId: randomUUID(),
  contentType: 'application/json',
  headers: {},
};
const long = (n: number, c = 'x') => c.repeat(n);

const shapes: [string, ServiceBusMessage][] = [
  ['the common shape', toServiceBusMessage(base)],
  ['no target', toServiceBusMessage({ ...base, target: '' })],
  ['empty body', toServiceBusMessage({ ...base, body: new Uint8Array(0) })],
  ['body of 255 bytes', toServiceBusMessage({ ...base, body: Buffer.alloc(255, 1) })],
  ['body of 256 bytes', toServiceBusMessage({ ...base, body: Buffer.alloc(256, 2) })],
  ['body of 100 KB', toServiceBusMessage({ ...base, body: Buffer.alloc(100_000, 3) })],
  [
    'every id field',
    toServiceBusMessage({
      ...base,
      correlationId: randomUUID(),
      replyTo: 'cloudmom-reply-1',
      groupKey: 'customer-42',
    }),
  ],
  [
    'headers, one of them long, one not ASCII',
    toServiceBusMessage({
      ...base,
      headers: { traceparent: '00-abc-def-01', note: long(300), ünï: 'çødé ✓ 😀' },
    }),
  ],
  ['a target of 255 bytes', toServiceBusMessage({ ...base, target: long(255) })],
  ['a target of 256 bytes', toServiceBusMessage({ ...base, target: long(256) })],
  ['a content type of 300 bytes', toServiceBusMessage({ ...base, contentType: long(300, 'c') })],
  ['a lone surrogate', toServiceBusMessage({ ...base, target: 'a\ud800b' })],
  ['ids the Functions worker would alter', toServiceBusMessage({ ...base, messageId: '1e3' })],
  ['delayed', toServiceBusMessage({ ...base, delaySeconds: 60 })],
  [
    'a dead-letter copy',
    toServiceBusMessage({
      ...base,
      deadLetter: { code: 'handler-failed', description: 'boom', deliveryCount: 3 },
    }),
  ],
  ['a reply into a session', { ...toServiceBusMessage(base), replyToSessionId: 'rs-1' }],
  ['empty application properties', { ...toServiceBusMessage(base), applicationProperties: {} }],
  ['no message id', { body: Buffer.from('x'), subject: 't' }],
  ['no properties at all', { body: Buffer.from('x') }],
];

describe('encodeServiceBusMessage', () => {
  it.each(shapes)('writes the SDK’s bytes: %s', async (_name, m) => {
    const ours = encodeServiceBusMessage(m);
    expect(ours).toBeDefined();
    const [first, later] = await sdkBytes(m);
    expect(ours!.equals(first!)).toBe(true);
    expect(ours!.equals(later!)).toBe(true);
  });

  it('leaves to the SDK what it does not write', () => {
    const m = toServiceBusMessage(base);
    expect(encodeServiceBusMessage({ ...m, timeToLive: 1000 })).toBeUndefined();
    expect(encodeServiceBusMessage({ ...m, partitionKey: 'p' })).toBeUndefined();
    expect(encodeServiceBusMessage({ ...m, body: { a: 1 } })).toBeUndefined();
    expect(encodeServiceBusMessage({ ...m, messageId: 7 })).toBeUndefined();
    expect(encodeServiceBusMessage({ ...m, messageId: long(129) })).toBeUndefined();
    expect(encodeServiceBusMessage({ ...m, sessionId: long(129) })).toBeUndefined();
    expect(encodeServiceBusMessage({ ...m, applicationProperties: { n: 1 } })).toBeUndefined();
    expect(
      encodeServiceBusMessage({ ...m, scheduledEnqueueTimeUtc: new Date(Number.NaN) }),
    ).toBeUndefined();
  });
});

describe('LinkBatchWriter', () => {
  const many = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      toServiceBusMessage({
        ...base,
        body: Buffer.from(JSON.stringify({ i, text: long(i % 700) })),
        messageId: randomUUID(),
        headers: i % 3 === 0 ? { k: String(i) } : {},
      }),
    );

  /** Fills link batches from `messages` with `add`; answers each batch's count and size. */
  async function fill(
    messages: ServiceBusMessage[],
    add: (b: { batch: ServiceBusMessageBatch; own: boolean }, m: ServiceBusMessage) => boolean,
  ) {
    const out: ServiceBusMessageBatch[] = [];
    let link = { batch: await sender.createMessageBatch(), own: false };
    for (const m of messages) {
      if (add(link, m)) continue;
      out.push(link.batch);
      link = { batch: await sender.createMessageBatch(), own: false };
      expect(add(link, m)).toBe(true);
    }
    out.push(link.batch);
    return out;
  }

  it('fills link batches exactly as tryAddMessage does, and they send', async () => {
    const messages = many(1500);
    const writer = new LinkBatchWriter(() => {
      throw new Error('no mismatch expected');
    });
    const ours = await fill(messages, (l, m) => writer.tryAdd(l, m));
    const sdk = await fill(messages, (l, m) => l.batch.tryAddMessage(m));
    expect(ours.length).toBeGreaterThan(1);
    expect(ours.map((b) => [b.count, b.sizeInBytes])).toEqual(
      sdk.map((b) => [b.count, b.sizeInBytes]),
    );
    const generate = (b: ServiceBusMessageBatch) =>
      (b as unknown as { _generateMessage(): Buffer })._generateMessage();
    for (let i = 0; i < ours.length; i++)
      expect(generate(ours[i]!).equals(generate(sdk[i]!))).toBe(true);
    for (const b of ours) await sender.sendMessages(b);
    const receiver = client.createReceiver(queue, {
      receiveMode: 'receiveAndDelete',
      skipParsingBodyAsJson: true,
    });
    let got = 0;
    const deadline = Date.now() + 20_000;
    while (got < messages.length && Date.now() < deadline)
      got += (await receiver.receiveMessages(500, { maxWaitTimeInMs: 300 })).length;
    await receiver.close();
    expect(got).toBe(messages.length);
  });

  it('turns itself off, once, when the SDK’s bytes are not its own', async () => {
    let told = 0;
    const writer = new LinkBatchWriter(() => told++);
    const batch = await sender.createMessageBatch();
    // another encoding of the first message, as another SDK version might store it
    const fields = batch as unknown as { _encodedMessages: Buffer[] };
    const push = fields._encodedMessages.push.bind(fields._encodedMessages);
    fields._encodedMessages.push = (b: Buffer) => push(Buffer.concat([b, Buffer.from([0])]));
    const link = { batch, own: false };
    expect(writer.tryAdd(link, toServiceBusMessage(base))).toBe(true);
    expect([link.own, told]).toEqual([false, 1]);
    const next = { batch: await sender.createMessageBatch(), own: false };
    expect(writer.tryAdd(next, toServiceBusMessage(base))).toBe(true);
    expect(writer.tryAdd(next, toServiceBusMessage(base))).toBe(true);
    expect([next.own, told]).toEqual([false, 1]);
  });
});
