/**
 * The raw-client anchors of the RabbitMQ, Kafka and Service Bus publish benchmarks, shared by
 * the suites (bench/amqp.bench.ts, bench/kafka.bench.ts, bench/azure.bench.ts) and their
 * profiling drivers (bench/profile/), so a profile measures exactly what the table compares with.
 */
import { randomUUID } from 'node:crypto';
import type { ServiceBusSender } from '@azure/service-bus';
import type { Publisher } from 'rabbitmq-client';

/** The ~256-byte JSON body every publish benchmark sends (`id` set per message). */
export const BENCH_BODY = { id: 0, text: 'x'.repeat(200), tags: ['a', 'b', 'c'] };

/** A1's anchor: one confirmed, mandatory, persistent publish as rabbitmq-client's user writes it. */
export function rawAmqpPublish(pub: Publisher, exchange: string): (i: number) => Promise<void> {
  return (i) =>
    pub.send(
      {
        exchange,
        routingKey: 'bench',
        mandatory: true,
        durable: true,
        messageId: globalThis.crypto.randomUUID(),
        contentType: 'application/json',
        headers: { target: 'bench' },
      },
      Buffer.from(JSON.stringify({ ...BENCH_BODY, id: i })),
    );
}

const h = (s: string) => Buffer.from(s);

/** K1's anchor records `from`…`to - 1`: the JSON body and the headers cloudmom sends. */
export function rawKafkaRecords(topic: string, from: number, to: number) {
  const messages = [];
  for (let k = from; k < to; k++)
    messages.push({
      topic,
      value: Buffer.from(JSON.stringify({ ...BENCH_BODY, id: k })),
      headers: new Map([
        [h('target'), h('bench')],
        [h('content_type'), h('application/json')],
        [h('message_id'), h(randomUUID())],
      ]),
    });
  return messages;
}

/** What K2's anchor reads of a record (a `@platformatic/kafka` Message, or a stand-in for one). */
export interface RawKafkaRecord {
  readonly headerEntries: Iterable<readonly [Buffer, Buffer]>;
  readonly value: Buffer;
  commit(): unknown;
}

/**
 * K2's anchor, the raw consume loop's work per record: the headers decoded, the JSON value
 * parsed, a handler called, a commit every 1,000 records; resolves at the `n`-th record fed to
 * the answered `onRecord` (give it the stream's `data` events).
 */
export function rawKafkaConsume(n: number): {
  onRecord: (m: RawKafkaRecord) => void;
  done: Promise<void>;
} {
  let seen = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  const handler = (_headers: Record<string, string>, _body: unknown) => {
    seen++;
  };
  const onRecord = (m: RawKafkaRecord) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of m.headerEntries) headers[k.toString()] = v.toString();
    handler(headers, JSON.parse(m.value.toString()));
    if (seen % 1000 === 0) void m.commit();
    if (seen === n) resolve();
  };
  return { onRecord, done };
}

/**
 * P4's Service Bus anchor: `n` messages sent by hand — each `payload(i)` JSON-encoded with a
 * fresh message id and `subject` as the target, `createMessageBatch` batches filled to the link
 * size, one `sendMessages` per batch, all awaited. With `perMessage`, each message also gets its
 * own promise, resolved with its id once its batch is sent, and those are awaited instead: what
 * a result per publish costs by itself (bench/profile/publish-client.ts).
 */
export async function rawServiceBusSend(
  sender: ServiceBusSender,
  n: number,
  payload: (i: number) => unknown,
  { subject = 'bench', perMessage = false }: { subject?: string; perMessage?: boolean } = {},
): Promise<void> {
  const sends: Promise<void>[] = [];
  const each: Promise<string>[] = [];
  let ids: string[] = [];
  let batch = await sender.createMessageBatch();
  const send = () => {
    const sent = sender.sendMessages(batch);
    sends.push(sent);
    if (perMessage) for (const id of ids) each.push(sent.then(() => id));
    ids = [];
  };
  for (let i = 0; i < n; i++) {
    const message = {
      body: Buffer.from(JSON.stringify(payload(i))),
      messageId: randomUUID(),
      contentType: 'application/json',
      subject,
    };
    if (!batch.tryAddMessage(message)) {
      send();
      batch = await sender.createMessageBatch();
      if (!batch.tryAddMessage(message)) throw new Error('a single message does not fit a batch');
    }
    if (perMessage) ids.push(message.messageId);
  }
  if (batch.count > 0) send();
  await Promise.all(perMessage ? each : sends);
}
