/**
 * ServiceBusBroker against the peer, beyond the conformance suite: the wire mapping as another
 * SDK client sees it, batching at the link's size, topics with subscription rules, lock renewal
 * while a handler runs, mixed settlements under concurrency, a configured reply queue, an
 * injected client.
 */
import { randomUUID } from 'node:crypto';
import {
  ServiceBusClient,
  type ServiceBusMessageBatch,
  type ServiceBusReceivedMessage,
} from '@azure/service-bus';
import { type Codec, MessageTooLargeError } from 'cloudmom';
import { ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { linkBatchMaker } from '../../adapters/azure/broker.ts';
import { bodyBytes, measureServiceBus, toServiceBusMessage } from '../../adapters/azure/wire.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString);
afterAll(() => client.close());

const brokers: ServiceBusBroker[] = [];
afterEach(async () => {
  await Promise.allSettled(brokers.splice(0).map((b) => b.stop()));
});
function broker(options: ConstructorParameters<typeof ServiceBusBroker>[0]): ServiceBusBroker {
  const b = new ServiceBusBroker({ connectionString, logger: false, ...options });
  brokers.push(b);
  return b;
}
const fresh = (prefix = 'broker-') => `${prefix}${randomUUID().slice(0, 8)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, probe: () => T | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
async function receiveAll(entity: string, n: number, sub?: 'deadLetter', waitMs = 10_000) {
  const r = client.createReceiver(entity, {
    receiveMode: 'receiveAndDelete',
    skipParsingBodyAsJson: true,
    ...(sub ? { subQueueType: sub } : {}),
  });
  const got: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + waitMs;
  while (got.length < n && Date.now() < deadline)
    got.push(...(await r.receiveMessages(n - got.length, { maxWaitTimeInMs: 300 })));
  await r.close();
  return got;
}

describe('ServiceBusBroker: the wire, as another client sees it', () => {
  it('maps target, ids, reply address, content type, headers, group key and delay to Service Bus fields', async () => {
    const queue = fresh();
    const b = broker({ queue });
    const id = await b.publish({ hello: 'world' }, 'greet', {
      correlationId: 'corr-7',
      replyTo: 'cloudmom-reply-x',
      headers: { tenant: 'acme', 'Mixed-Case': 'kept' },
      groupKey: 'customer-1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    const started = Date.now();
    await b.publish('later', 'greet', { delaySeconds: 1 });
    const [m, later] = await receiveAll(queue, 2);
    expect(m).toBeDefined();
    expect(m!.messageId).toBe(id);
    expect(m!.subject).toBe('greet');
    expect(m!.correlationId).toBe('corr-7');
    expect(m!.replyTo).toBe('cloudmom-reply-x');
    expect(m!.contentType).toBe('application/json');
    expect(m!.sessionId).toBe('customer-1');
    expect(m!.applicationProperties).toEqual({
      tenant: 'acme',
      'Mixed-Case': 'kept',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    // Sent as a Buffer: one data section with the JSON bytes, not re-encoded by the SDK.
    expect(Buffer.from(bodyBytes(m!)).toString()).toBe('{"hello":"world"}');
    expect(later?.subject).toBe('greet');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('sends concurrent publishes in link-sized batches: 300 × 2 KB (more than one 256 KB batch) all arrive', async () => {
    const queue = fresh();
    const b = broker({ queue });
    const body = 'x'.repeat(2048);
    const ids = await Promise.all(
      Array.from({ length: 300 }, (_, i) => b.publish(`${i}:${body}`, 'bulk')),
    );
    expect(new Set(ids).size).toBe(300);
    const got = await receiveAll(queue, 300);
    expect(new Set(got.map((m) => m.messageId))).toEqual(new Set(ids));
  });

  it('a message measured at exactly the limit fits the link; one byte more is refused before sending', async () => {
    const queue = fresh();
    const b = broker({ queue });
    const probe = {
      body: new Uint8Array(0),
      target: 'edge',
      messageId: randomUUID(),
      contentType: 'application/octet-stream',
      headers: {},
    };
    const room = 256 * 1024 - measureServiceBus(probe);
    await b.publish(new Uint8Array(room), 'edge');
    await expect(b.publish(new Uint8Array(room + 1), 'edge')).rejects.toBeInstanceOf(
      MessageTooLargeError,
    );
    const [m] = await receiveAll(queue, 1);
    expect(bodyBytes(m!).byteLength).toBe(room);
  });

  it('measures every message at least at what it adds to a link batch, and at most 25% more', async () => {
    const sender = client.createSender(fresh());
    const enc = new TextEncoder();
    const mk = (body: number, over: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
      body: enc.encode('x'.repeat(body)),
      target: 'bench',
      messageId: randomUUID(),
      contentType: 'application/json',
      headers: {},
      ...over,
    });
    const cases = [
      mk(450),
      mk(0),
      mk(255),
      mk(100_000),
      mk(450, { headers: { k: 'v'.repeat(1000) } }),
      mk(450, {
        headers: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, `v${i}`])),
      }),
      mk(450, { correlationId: 'c'.repeat(300), replyTo: 'r', groupKey: 'g'.repeat(50) }),
      mk(450, { delaySeconds: 5, deduplicationId: 'd'.repeat(128) }),
      mk(450, { headers: { ü: 'ünï'.repeat(100) }, target: 't'.repeat(200) }),
      mk(450, {
        target: '',
        deadLetter: { code: 'handler-failed', description: 'd'.repeat(500), deliveryCount: 3 },
      }),
      mk(450, { messageId: '1e3', correlationId: 'null', replyTo: '12345678901234567890' }),
    ];
    for (const m of cases) {
      const batch = await sender.createMessageBatch();
      expect(batch.tryAddMessage(toServiceBusMessage(m))).toBe(true);
      const first = batch.sizeInBytes;
      expect(batch.tryAddMessage(toServiceBusMessage({ ...m, messageId: `${m.messageId}x` }))).toBe(
        true,
      );
      const adds = batch.sizeInBytes - first;
      expect(measureServiceBus(m)).toBeGreaterThanOrEqual(adds);
      expect(measureServiceBus(m)).toBeLessThanOrEqual(adds * 1.25);
    }
    await sender.close();
  });

  it('packs a burst into link batches made at once: no createMessageBatch awaited after the first, each message delivered once', async () => {
    const queue = fresh();
    const b = broker({ queue });
    await b.publish('warm-up', 'burst'); // the sender's first link batch is awaited
    const proto = Object.getPrototypeOf(client.createSender(queue)) as {
      createMessageBatch: (...a: unknown[]) => Promise<ServiceBusMessageBatch>;
      sendMessages: (...a: unknown[]) => Promise<void>;
    };
    const { createMessageBatch, sendMessages } = proto;
    let awaited = 0;
    let sent = 0;
    proto.createMessageBatch = function (this: unknown, ...a: unknown[]) {
      awaited++;
      return createMessageBatch.apply(this, a);
    };
    proto.sendMessages = function (this: unknown, ...a: unknown[]) {
      sent++;
      return sendMessages.apply(this, a);
    };
    let ids: string[];
    let sentInTurn: number;
    try {
      // ~1.2 MB in one turn: five link batches or more of 256 KB
      const publishes = Array.from({ length: 1200 }, (_, i) =>
        b.publish({ i, pad: 'p'.repeat(1000) }, 'burst'),
      );
      sentInTurn = sent; // the full core batches went out in the calls that filled them
      ids = await Promise.all(publishes);
    } finally {
      Object.assign(proto, { createMessageBatch, sendMessages });
    }
    expect(awaited).toBe(0);
    expect(sentInTurn).toBeGreaterThanOrEqual(4);
    const got = await receiveAll(queue, 1202, undefined, 20_000);
    expect(got).toHaveLength(1201);
    const seen = got.map((m) => String(m.messageId));
    expect(new Set(seen).size).toBe(1201);
    expect(seen).toEqual(expect.arrayContaining(ids));
  });

  it('makes link batches like the SDK made one, or says it cannot', async () => {
    const sender = client.createSender(fresh());
    const template = await sender.createMessageBatch();
    const make = linkBatchMaker(template);
    expect(make).toBeTypeOf('function');
    const made = make!();
    expect([made.count, made.sizeInBytes, made.maxSizeInBytes]).toEqual([
      0,
      0,
      template.maxSizeInBytes,
    ]);
    expect(made.tryAddMessage({ body: Buffer.from('x'), subject: 't' })).toBe(true);
    await sender.sendMessages(made);
    // another SDK's batch, without the internals this builds on: no maker, createMessageBatch it is
    const other = { count: 0, sizeInBytes: 0, maxSizeInBytes: 1024, tryAddMessage: () => true };
    expect(linkBatchMaker(other as unknown as ServiceBusMessageBatch)).toBeUndefined();
    await sender.close();
  });

  it('uses an injected client and leaves it open on stop()', async () => {
    const own = new ServiceBusClient(connectionString);
    const queue = fresh();
    const b = new ServiceBusBroker({ client: own, queue, logger: false });
    expect(b.client).toBe(own);
    await b.publish('x', 't');
    await b.stop();
    const sender = own.createSender(queue); // still usable
    await sender.sendMessages({ body: Buffer.from('y'), subject: 't' });
    await sender.close();
    expect(await receiveAll(queue, 2)).toHaveLength(2);
    await own.close();
  });
});

describe('ServiceBusBroker: consuming', () => {
  it('consumes a topic subscription filtered on the subject (correlation rule)', async () => {
    const topic = fresh('topic-');
    // The peer creates the topic and subscription on first use; the rule manager sets the filter.
    const rules = client.createRuleManager(topic, 'greetings');
    await rules.createRule('target', { subject: 'greet' });
    await rules.deleteRule('$Default');
    const sub = broker({ topic, subscription: 'greetings' });
    const seen: string[] = [];
    sub.add('greet', (_p, body: string) => {
      seen.push(body);
    });
    sub.add('other', (_p, body: string) => {
      seen.push(`wrong: ${body}`);
    });
    await sub.start();
    const pub = broker({ topic });
    await pub.publish('one', 'other');
    await pub.publish('two', 'greet');
    await until('the greeting', () => seen.length >= 1);
    await sleep(300);
    expect(seen).toEqual(['two']);
  });

  it('renews the lock while a slow handler runs (2 s lock, 5 s handler): handled once, completed', async () => {
    const queue = fresh('lock2s-');
    const b = broker({ queue, concurrency: 2 });
    let calls = 0;
    let done = false;
    b.add('slow', async () => {
      calls++;
      await sleep(5000);
      done = true;
    });
    await b.start();
    await b.publish('x', 'slow');
    await until('the slow handler', () => done, 15_000);
    await until('the ack', () => b.stats.acked >= 1);
    await sleep(2500); // a lost lock would have redelivered by now
    expect(calls).toBe(1);
    expect(await receiveAll(queue, 1, undefined, 500).then((m) => m.length)).toBe(0);
  }, 30_000);

  it('settles mixed outcomes under concurrency without losing or mixing any (SettleGate)', async () => {
    const queue = fresh();
    const liar: Codec = {
      contentType: 'application/json',
      encode: (s) => new TextEncoder().encode(String(s)),
      decode: (b) => b,
    };
    const poisoner = broker({ queue, codecs: [liar] });
    const b = broker({
      queue,
      concurrency: 30,
      maxDeliveries: 5,
      retry: { baseDelayMs: 0, maxDelayMs: 0 },
    });
    const counts = new Map<string, number>();
    // Handlers finish together (a barrier), so completes and abandons are issued in one tick.
    const waiting: (() => void)[] = [];
    const barrier = () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        const release = () => {
          for (const w of waiting.splice(0)) w();
        };
        if (waiting.length >= 10) release();
        else setTimeout(release, 100);
      });
    b.add('work', async (_p, body: { id: string; failFirst: boolean }) => {
      const n = (counts.get(body.id) ?? 0) + 1;
      counts.set(body.id, n);
      await barrier();
      if (body.failFirst && n === 1) throw new Error('first attempt fails');
    });
    const publishes: Promise<string>[] = [];
    for (let i = 0; i < 30; i++) {
      publishes.push(b.publish({ id: `ok-${i}`, failFirst: false }, 'work'));
      publishes.push(b.publish({ id: `retry-${i}`, failFirst: true }, 'work'));
      publishes.push(poisoner.publish(`{poison-${i}`, 'work', { contentType: 'application/json' }));
    }
    await Promise.all(publishes);
    await b.start();
    await until('every message settled', () => b.stats.acked + b.stats.deadLettered >= 90, 20_000);
    await sleep(500);
    for (let i = 0; i < 30; i++) {
      expect(counts.get(`ok-${i}`)).toBe(1);
      expect(counts.get(`retry-${i}`)).toBe(2);
    }
    const dead = await receiveAll(queue, 30, 'deadLetter');
    expect(dead).toHaveLength(30);
    expect(dead.every((d) => d.deadLetterReason === 'undecodable')).toBe(true);
    expect(new Set(dead.map((d) => Buffer.from(bodyBytes(d)).toString())).size).toBe(30);
  }, 40_000);

  it('why SettleGate exists: with rhea 3.0.5 a complete and a dead-letter issued in one tick both complete', async () => {
    // A canary: if this starts failing, rhea fixed write_dispositions and SettleGate can go.
    const queue = fresh();
    const sender = client.createSender(queue);
    await sender.sendMessages([
      { body: Buffer.from('a'), messageId: 'a' },
      { body: Buffer.from('b'), messageId: 'b' },
    ]);
    await sender.close();
    const r = client.createReceiver(queue, { receiveMode: 'peekLock' });
    const got = await r.receiveMessages(2, { maxWaitTimeInMs: 2000 });
    expect(got).toHaveLength(2);
    await Promise.all([
      r.completeMessage(got[0]!),
      r.deadLetterMessage(got[1]!, { deadLetterReason: 'r', deadLetterErrorDescription: 'd' }),
    ]);
    await r.close();
    expect(await receiveAll(queue, 1, 'deadLetter', 500)).toHaveLength(0); // the dead-letter was lost
    expect(await receiveAll(queue, 1, undefined, 500)).toHaveLength(0);
  });
});

describe('ServiceBusBroker: sessions', () => {
  it('keeps the order of a session through a retry: the failed message is handled again before the next', async () => {
    const queue = fresh('session-');
    const b = broker({
      queue,
      sessions: true,
      sessionIdleMs: 200,
      retry: { baseDelayMs: 0, maxDelayMs: 0 },
    });
    const seen: string[] = [];
    b.add('step', (p, body: { g: string; i: number }) => {
      seen.push(`${body.g}${body.i}#${p.deliveryCount}`);
      if (body.g === 'a' && body.i === 1 && p.deliveryCount === 1) throw new Error('once');
    });
    for (let i = 0; i < 4; i++)
      for (const g of ['a', 'b']) await b.publish({ g, i }, 'step', { groupKey: `grp-${g}` });
    await b.start();
    await until('all steps', () => seen.length >= 9);
    await sleep(300);
    const of = (g: string) => seen.filter((x) => x.startsWith(g));
    expect(of('a')).toEqual(['a0#1', 'a1#1', 'a1#2', 'a2#1', 'a3#1']);
    expect(of('b')).toEqual(['b0#1', 'b1#1', 'b2#1', 'b3#1']);
  });

  it('a message without group key is its own session on a session entity', async () => {
    const queue = fresh('session-');
    const b = broker({ queue, sessions: true });
    await b.publish('solo', 'x');
    const [m] = await (async () => {
      const r = await client.acceptNextSession(queue, { receiveMode: 'receiveAndDelete' });
      const got = await r.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      await r.close();
      return got;
    })();
    expect(m?.sessionId).toBe(m?.messageId);
  });
});

describe('ServiceBusBroker: request()', () => {
  it('with a configured replyQueue, replies come back there (the responder allows it)', async () => {
    const queue = fresh();
    const replyQueue = fresh('replies-');
    const responder = broker({ queue, replyAllowList: ['replies-*'] });
    responder.add('echo', (_p, body: string) => `echo: ${body}`);
    await responder.start();
    const requester = broker({ queue, replyQueue });
    const reply = await requester.request('hi', 'echo', { timeoutMs: 5000 });
    expect(reply.body).toBe('echo: hi');
    expect(reply.properties.raw).toMatchObject({ subject: 'reply' });
  });

  it('replySessions: requesters sharing one session-enabled reply queue each get their own replies', async () => {
    const queue = fresh();
    const replyQueue = fresh('session-replies-');
    const responder = broker({ queue, concurrency: 20, replyAllowList: ['session-replies-*'] });
    responder.add('square', async (_p, n: number) => {
      await sleep(Math.random() * 10);
      return n * n;
    });
    await responder.start();
    const requesters = [0, 1, 2].map(() => broker({ queue, replyQueue, replySessions: true }));
    const results = await Promise.all(
      requesters.flatMap((r, k) =>
        Array.from({ length: 10 }, (_, i) =>
          r
            .request(k * 100 + i, 'square', { timeoutMs: 10_000 })
            .then((reply) => ({ k, i, reply })),
        ),
      ),
    );
    for (const { k, i, reply } of results) {
      expect(reply.body).toBe((k * 100 + i) ** 2);
      const raw = reply.properties.raw as ServiceBusReceivedMessage;
      expect(raw.sessionId).toMatch(/^cloudmom-/);
    }
    // Each requester's replies came in one session, a different one per requester.
    const sessions = requesters.map(
      (_, k) =>
        new Set(
          results
            .filter((x) => x.k === k)
            .map((x) => (x.reply.properties.raw as ServiceBusReceivedMessage).sessionId),
        ),
    );
    expect(sessions.every((s) => s.size === 1)).toBe(true);
    expect(new Set(sessions.map((s) => [...s][0])).size).toBe(3);
  });
});
