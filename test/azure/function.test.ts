/**
 * azureFunctionHandler against the peer: messages are published with ServiceBusBroker,
 * received from the peer with the unmodified SDK, handed to the handler as the Functions host
 * would (test/azure/host.ts: `InvocationContext` with trigger metadata, plain or SDK-type
 * binding), and the replies, settlements and dead letters are read back from the peer.
 */
import { randomUUID } from 'node:crypto';
import {
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
import { CloudmomError, type Properties } from 'cloudmom';
import { azureFunctionHandler, ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { bodyBytes } from '../../adapters/azure/wire.ts';
import { registerExample } from '../../examples/app.ts';
import { topology as exampleTopology } from '../../examples/topology.ts';
import { actionsFor, hostInput, invocation } from './host.ts';

const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString);
const publishers: ServiceBusBroker[] = [];
const brokers: ServiceBusBroker[] = [];
afterAll(async () => {
  await Promise.allSettled([...publishers, ...brokers].map((b) => b.stop()));
  await client.close();
});

const fresh = (prefix: string) => `${prefix}${randomUUID().slice(0, 8)}`;
const text = (m: ServiceBusReceivedMessage) => Buffer.from(bodyBytes(m)).toString('utf8');

/** The function app's broker: the example handlers, replies to `fn-replies-*` allowed. */
function functionBroker(
  seen?: Properties[],
  options: ConstructorParameters<typeof ServiceBusBroker>[0] = {},
): ServiceBusBroker {
  const b = registerExample(
    new ServiceBusBroker({
      connectionString,
      logger: false,
      maxDeliveries: 3,
      replyAllowList: ['fn-replies-*'],
      ...options,
    }),
  );
  if (seen) {
    b.add('hello', (p) => {
      seen.push(p);
    });
  }
  brokers.push(b);
  return b;
}

function publisher(publishTo: string): ServiceBusBroker {
  const b = new ServiceBusBroker({ connectionString, publishTo, logger: false });
  publishers.push(b);
  return b;
}

/** Receives exactly `n` messages (peek-lock) from a queue or subscription. */
async function receive(
  receiver: ServiceBusReceiver,
  n: number,
  waitMs = 5000,
): Promise<ServiceBusReceivedMessage[]> {
  const got: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + waitMs;
  while (got.length < n && Date.now() < deadline) {
    got.push(...(await receiver.receiveMessages(n - got.length, { maxWaitTimeInMs: 300 })));
  }
  return got;
}

function receiver(entity: string, sub?: 'deadLetter'): ServiceBusReceiver {
  return client.createReceiver(entity, {
    receiveMode: 'peekLock',
    skipParsingBodyAsJson: true,
    ...(sub ? { subQueueType: sub } : {}),
  });
}

describe('azureFunctionHandler, plain binding', () => {
  it('cardinality one: dispatches by subject, replies through the SDK to replyTo with the correlation id', async () => {
    const queue = fresh('fn-in-');
    const replies = fresh('fn-replies-');
    const seen: Properties[] = [];
    const handler = azureFunctionHandler(functionBroker(seen));
    await publisher(queue).publish('Hello World!', 'hello', {
      replyTo: replies,
      correlationId: 'corr-1',
      headers: { Tenant: 'acme', 'x-trace': 'abc' },
    });
    const r = receiver(queue);
    const msgs = await receive(r, 1);
    expect(msgs).toHaveLength(1);
    await handler(hostInput(msgs, 'one'), invocation(msgs, 'one'));
    await r.completeMessage(msgs[0]!); // the host auto-completes after a successful invocation
    await r.close();

    expect(seen).toHaveLength(1);
    expect(seen[0]!.target).toBe('hello');
    expect(seen[0]!.messageId).toBe(msgs[0]!.messageId);
    expect(seen[0]!.deliveryCount).toBe(1);
    expect(seen[0]!.correlationId).toBe('corr-1');
    // The host lower-cases the first letter of application property names.
    expect(seen[0]!.headers).toEqual({ tenant: 'acme', 'x-trace': 'abc' });

    const rr = receiver(replies);
    const [reply] = await receive(rr, 1);
    expect(reply).toBeDefined();
    expect(text(reply!)).toBe('Hi there too');
    expect(reply!.correlationId).toBe('corr-1');
    expect(reply!.subject).toBe('reply');
    expect(reply!.contentType).toMatch(/^text\/plain/);
    await rr.completeMessage(reply!);
    await rr.close();
  });

  it('a request with replyToSessionId gets its reply in that session (shared session reply queue)', async () => {
    const queue = fresh('fn-in-');
    const replies = fresh('fn-replies-');
    const handler = azureFunctionHandler(functionBroker());
    const sender = client.createSender(queue);
    await sender.sendMessages({
      body: Buffer.from('"Hello"'),
      contentType: 'application/json',
      subject: 'hello',
      correlationId: 'corr-s',
      replyTo: replies,
      replyToSessionId: 'requester-7',
    });
    await sender.close();
    const r = receiver(queue);
    const msgs = await receive(r, 1);
    await handler(hostInput(msgs, 'one'), invocation(msgs, 'one'));
    await r.completeMessage(msgs[0]!);
    await r.close();
    const rr = receiver(replies);
    const [reply] = await receive(rr, 1);
    expect(reply?.correlationId).toBe('corr-s');
    expect(reply?.sessionId).toBe('requester-7');
    await rr.close();
  });

  it('cardinality many, dataType binary: every message is handled and replied to', async () => {
    const queue = fresh('fn-in-');
    const replies = fresh('fn-replies-');
    const handler = azureFunctionHandler(functionBroker());
    const pub = publisher(queue);
    await Promise.all(
      [1, 2, 3].map((n) =>
        pub.publish({ numbers: [n, n, n] }, 'sum', { replyTo: replies, correlationId: `sum-${n}` }),
      ),
    );
    const r = receiver(queue);
    const msgs = await receive(r, 3);
    expect(msgs).toHaveLength(3);
    const input = hostInput(msgs, 'many', 'binary');
    expect(Array.isArray(input) && Buffer.isBuffer(input[0])).toBe(true);
    await handler(input, invocation(msgs, 'many'));
    for (const m of msgs) await r.completeMessage(m);
    await r.close();

    const rr = receiver(replies);
    const got = await receive(rr, 3);
    const byCorrelation = Object.fromEntries(
      got.map((m) => [String(m.correlationId), JSON.parse(text(m))]),
    );
    expect(byCorrelation).toEqual({
      'sum-1': { sum: 3 },
      'sum-2': { sum: 6 },
      'sum-3': { sum: 9 },
    });
    await rr.close();
  });

  it('cardinality many: one failing message fails the invocation (the host abandons them all)', async () => {
    const queue = fresh('fn-in-');
    const replies = fresh('fn-replies-');
    const handler = azureFunctionHandler(functionBroker());
    const pub = publisher(queue);
    await pub.publish('Hello', 'hello', { replyTo: replies, correlationId: 'ok-1' });
    await pub.publish('x', 'flaky', { replyTo: replies, correlationId: 'bad-1' });
    const r = receiver(queue);
    const msgs = await receive(r, 2);
    const err = await handler(hostInput(msgs, 'many'), invocation(msgs, 'many')).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CloudmomError);
    expect((err as Error).message).toMatch(/1 of 2 message\(s\) failed/);
    for (const m of msgs) await r.abandonMessage(m); // what the host does on a thrown invocation
    // The trade-off of the plain binding: the good message comes back too.
    const again = await receive(r, 2);
    expect(again.map((m) => m.deliveryCount).sort()).toEqual([1, 1]);
    for (const m of again) await r.completeMessage(m);
    await r.close();
  });

  it('an undecodable body goes to the broker`s poisonQueue with its reason, and the invocation succeeds', async () => {
    const queue = fresh('fn-in-');
    const poison = fresh('fn-poison-');
    const handler = azureFunctionHandler(functionBroker(undefined, { poisonQueue: poison }));
    const sender = client.createSender(queue);
    await sender.sendMessages({
      body: Buffer.from('{not json'),
      contentType: 'application/json',
      subject: 'sum',
      messageId: 'poison-1',
    });
    await sender.close();
    const r = receiver(queue);
    const msgs = await receive(r, 1);
    await handler(hostInput(msgs, 'one', 'binary'), invocation(msgs, 'one'));
    await r.completeMessage(msgs[0]!);
    await r.close();
    const pr = receiver(poison);
    const [p] = await receive(pr, 1);
    expect(p?.applicationProperties?.dead_letter_reason).toBe('undecodable');
    expect(String(p?.applicationProperties?.dead_letter_description)).toMatch(/JSON/);
    expect(p?.subject).toBe('sum');
    expect(text(p!)).toBe('{not json');
    await pr.completeMessage(p!);
    await pr.close();
  });

  it('without poisonQueue an undecodable body fails the invocation (the service dead-letters after max deliveries)', async () => {
    const queue = fresh('fn-in-');
    const handler = azureFunctionHandler(functionBroker());
    const sender = client.createSender(queue);
    await sender.sendMessages({
      body: Buffer.from('{not json'),
      contentType: 'application/json',
      subject: 'sum',
    });
    await sender.close();
    const r = receiver(queue);
    const msgs = await receive(r, 1);
    await expect(
      handler(hostInput(msgs, 'one', 'binary'), invocation(msgs, 'one')),
    ).rejects.toBeInstanceOf(CloudmomError);
    await r.abandonMessage(msgs[0]!);
    await r.close();
  });
});

describe('azureFunctionHandler, SDK-type binding (settles message by message)', () => {
  it('a batch with a failing and a poison message: good ones completed, bad one abandoned, poison dead-lettered', async () => {
    const queue = fresh('fn-in-');
    const replies = fresh('fn-replies-');
    const handler = azureFunctionHandler(functionBroker());
    const pub = publisher(queue);
    await pub.publish({ numbers: [1, 2] }, 'sum', { replyTo: replies, correlationId: 'good-1' });
    await pub.publish('x', 'flaky', { correlationId: 'bad-1' });
    await pub.publish('Hello', 'hello', { replyTo: replies, correlationId: 'good-2' });
    const sender = client.createSender(queue);
    await sender.sendMessages({
      body: Buffer.from('{not json'),
      contentType: 'application/json',
      subject: 'sum',
      messageId: 'poison-2',
    });
    await sender.close();

    const r = receiver(queue);
    const msgs = await receive(r, 4);
    expect(msgs).toHaveLength(4);
    const log: string[] = [];
    await handler({ messages: msgs, actions: actionsFor(r, log) }, invocation(msgs, 'many'));
    const verbs = Object.fromEntries(log.map((l) => [l.split(' ')[1], l.split(' ')[0]]));
    const id = (c: string) => String(msgs.find((m) => m.correlationId === c)?.messageId);
    expect(verbs[id('good-1')]).toBe('complete');
    expect(verbs[id('good-2')]).toBe('complete');
    expect(verbs[id('bad-1')]).toBe('abandon');
    expect(verbs['poison-2']).toBe('deadletter');
    expect(log).toHaveLength(4);

    // Only the failed message comes back, with its delivery counted by the service.
    const again = await receive(r, 2, 1500);
    expect(again.map((m) => m.correlationId)).toEqual(['bad-1']);
    expect(again[0]!.deliveryCount).toBe(1); // AMQP header: one earlier delivery
    await r.completeMessage(again[0]!);
    await r.close();

    const dl = receiver(queue, 'deadLetter');
    const [d] = await receive(dl, 1);
    expect(d?.messageId).toBe('poison-2');
    expect(d?.deadLetterReason).toBe('undecodable');
    expect(d?.deadLetterErrorDescription).toMatch(/JSON/);
    await dl.completeMessage(d!);
    await dl.close();

    const rr = receiver(replies);
    const got = await receive(rr, 2);
    expect(got.map((m) => m.correlationId).sort()).toEqual(['good-1', 'good-2']);
    await rr.close();
  });

  it('a message failing on its last allowed delivery is dead-lettered with the handler error', async () => {
    const queue = fresh('fn-in-');
    const handler = azureFunctionHandler(functionBroker(), { cardinality: 'one' });
    await publisher(queue).publish({ job: 7 }, 'flaky');
    const r = receiver(queue);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const msgs = await receive(r, 1);
      expect(msgs).toHaveLength(1);
      expect(msgs[0]!.deliveryCount! + 1).toBe(attempt);
      await handler({ messages: msgs[0], actions: actionsFor(r) }, invocation(msgs, 'one'));
    }
    expect(await r.receiveMessages(1, { maxWaitTimeInMs: 500 })).toEqual([]);
    await r.close();
    const dl = receiver(queue, 'deadLetter');
    const [d] = await receive(dl, 1);
    expect(d?.deadLetterReason).toBe('handler-failed');
    expect(d?.deadLetterErrorDescription).toBe(
      'Error: downstream service unavailable (delivery 3 of 3)',
    );
    expect(JSON.parse(text(d!))).toEqual({ job: 7 });
    await dl.completeMessage(d!);
    await dl.close();
  });
});

describe('azureFunctionHandler on a topic subscription (app.serviceBusTopic)', () => {
  it('the example topology routes by subject to the target`s subscription; the reply reaches the reply queue', async () => {
    const replies = fresh('fn-replies-');
    const handler = azureFunctionHandler(functionBroker());
    const correlationId = `topic-${randomUUID()}`;
    // infra/azure/main.bicep's names: the topology's topic, the greeter's subscription
    const names = exampleTopology.names();
    await publisher(names.topic).publish({ numbers: [20, 22] }, 'sum', {
      replyTo: replies,
      correlationId,
    });
    const r = client.createReceiver(names.topic, names.services.greeter!.queue, {
      receiveMode: 'peekLock',
      skipParsingBodyAsJson: true,
    });
    let mine: ServiceBusReceivedMessage | undefined;
    const deadline = Date.now() + 5000;
    while (!mine && Date.now() < deadline) {
      for (const m of await r.receiveMessages(10, { maxWaitTimeInMs: 300 })) {
        if (m.correlationId === correlationId) mine = m;
        else await r.abandonMessage(m); // another test file's message
      }
    }
    expect(mine).toBeDefined();
    await handler(hostInput([mine!], 'one'), invocation([mine!], 'one', 'sum'));
    await r.completeMessage(mine!);
    await r.close();
    const rr = receiver(replies);
    const [reply] = await receive(rr, 1);
    expect(JSON.parse(text(reply!))).toEqual({ sum: 42 });
    expect(reply!.correlationId).toBe(correlationId);
    await rr.close();
  });
});
