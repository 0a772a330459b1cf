/**
 * Regression tests of issue 9's defects on Azure, against the Service Bus peer; each failed
 * before its fix:
 *
 * - 2: the plain Functions binding corrupted ids — the worker JSON-parses trigger metadata
 *   (`"12345678901234567890"` → 12345678901234567000, `"1e3"` → 1000, `"null"` → null);
 * - 4: a `replyQueue` shared by two instances without `replySessions` lost replies (the wrong
 *   instance took and discarded them);
 * - 6: a header named `__proto__` vanished (rhea decodes application properties into a plain
 *   object);
 * - "logged twice": the plain binding without a poison queue logged "message dead-lettered"
 *   and then "dead-lettering failed" for the same message.
 */
import { randomUUID } from 'node:crypto';
import {
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
import { CloudmomError, type Logger, type Properties } from 'cloudmom';
import { azureFunctionHandler, ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { bodyBytes } from '../../adapters/azure/wire.ts';
import { actionsFor, hostInput, invocation } from './host.ts';

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
const fresh = (prefix: string) => `${prefix}${randomUUID().slice(0, 8)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function receive(r: ServiceBusReceiver, n: number, waitMs = 5000) {
  const got: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + waitMs;
  while (got.length < n && Date.now() < deadline)
    got.push(...(await r.receiveMessages(n - got.length, { maxWaitTimeInMs: 300 })));
  return got;
}
function peekLock(entity: string, sub?: 'deadLetter'): ServiceBusReceiver {
  return client.createReceiver(entity, {
    receiveMode: 'peekLock',
    skipParsingBodyAsJson: true,
    ...(sub ? { subQueueType: sub } : {}),
  });
}

/** A logger that keeps every line (message and fields) for inspection. */
function recordingLogger(): Logger & { lines: { level: string; message: string; fields: any }[] } {
  const lines: { level: string; message: string; fields: any }[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields: fields ?? {} });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('issue 9, defect 2: the plain binding reads ids as they were sent', () => {
  // Each one is something the worker's JSON.parse changes or drops.
  const ids = ['12345678901234567890', '1e3', 'null', '"quoted"', '-0', '007x', '42'];

  for (const cardinality of ['one', 'many'] as const) {
    it(`cardinality ${cardinality}: correlation ids, message ids and reply addresses survive the worker`, async () => {
      const queue = fresh('fn-ids-');
      const replies = `1e${Math.floor(10_000 + Math.random() * 89_999)}`; // a queue named like a number
      const seen: Properties[] = [];
      const fn = broker({ replyAllowList: [replies] });
      fn.add('echo', (p) => {
        seen.push(p);
        return 'pong';
      });
      const pub = broker({ publishTo: queue });
      const sent = await Promise.all(
        ids.map((id) =>
          pub.publish('ping', 'echo', {
            correlationId: id,
            deduplicationId: `${id.replace(/"/g, '')}1`,
            replyTo: replies,
          }),
        ),
      );
      const r = peekLock(queue);
      const msgs = await receive(r, ids.length);
      expect(msgs).toHaveLength(ids.length);
      const handler = azureFunctionHandler(fn);
      if (cardinality === 'one') {
        for (const m of msgs) await handler(hostInput([m], 'one'), invocation([m], 'one'));
      } else {
        await handler(hostInput(msgs, 'many'), invocation(msgs, 'many'));
      }
      for (const m of msgs) await r.completeMessage(m);
      await r.close();

      expect(seen.map((p) => p.correlationId).sort()).toEqual([...ids].sort());
      expect(seen.map((p) => p.messageId).sort()).toEqual([...sent].sort());
      expect(seen.every((p) => p.replyTo === replies)).toBe(true);
      expect(seen.every((p) => Object.keys(p.headers).length === 0)).toBe(true);
      // The replies carry the correlation ids exactly as sent.
      const rr = peekLock(replies);
      const got = await receive(rr, ids.length);
      expect(got.map((m) => String(m.correlationId)).sort()).toEqual([...ids].sort());
      for (const m of got) await rr.completeMessage(m);
      await rr.close();
    });
  }
});

describe('issue 9, defect 4: a reply queue shared without sessions loses no reply', () => {
  it('two requester instances on one plain replyQueue: all 2 × 10 requests get their own reply', async () => {
    const queue = fresh('shared-in-');
    const replyQueue = fresh('shared-replies-');
    const responder = broker({ queue, concurrency: 20, replyAllowList: ['shared-replies-*'] });
    responder.add('who', async (_p, body: { from: string; n: number }) => {
      await sleep(Math.random() * 10);
      return body;
    });
    await responder.start();
    const logger = recordingLogger();
    const a = broker({ queue, replyQueue, logger });
    const c = broker({ queue, replyQueue, logger });
    const ask = (who: ServiceBusBroker, from: string) =>
      Array.from({ length: 10 }, (_, n) => who.request({ from, n }, 'who', { timeoutMs: 15_000 }));
    const [ra, rc] = await Promise.all([Promise.all(ask(a, 'a')), Promise.all(ask(c, 'c'))]);
    expect(ra.map((r) => r.body)).toEqual(Array.from({ length: 10 }, (_, n) => ({ from: 'a', n })));
    expect(rc.map((r) => r.body)).toEqual(Array.from({ length: 10 }, (_, n) => ({ from: 'c', n })));
    // The sharing was noticed and said (once per instance at most), steering to replySessions.
    const warned = logger.lines.filter((l) => /replySessions/.test(l.message));
    expect(warned.length).toBeLessThanOrEqual(2);
    // Nothing was left on the queue or dead-lettered.
    await sleep(300);
    const rest = peekLock(replyQueue);
    expect(await rest.receiveMessages(5, { maxWaitTimeInMs: 300 })).toEqual([]);
    await rest.close();
    const dlq = peekLock(replyQueue, 'deadLetter');
    expect(await dlq.receiveMessages(5, { maxWaitTimeInMs: 300 })).toEqual([]);
    await dlq.close();
  }, 40_000);
});

describe('issue 9, defect 6: a header named __proto__ round-trips', () => {
  const headers = (): Record<string, string> => {
    const h: Record<string, string> = { plain: 'p' };
    Object.defineProperty(h, '__proto__', {
      value: 'proto-value',
      enumerable: true,
      writable: true,
      configurable: true,
    });
    Object.defineProperty(h, '%__proto__', {
      value: 'escaped-looking',
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return h;
  };
  const own = (h: Readonly<Record<string, string>>) =>
    Object.fromEntries(Object.keys(h).map((k) => [k, h[k]]));

  it('through the broker (publish → start → handler) and into the native dead-letter queue', async () => {
    const queue = fresh('proto-');
    const b = broker({ queue, maxDeliveries: 1 });
    const seen: Properties[] = [];
    b.add('proto', (p) => {
      seen.push(p);
      throw new Error('to the dead-letter queue');
    });
    await b.publish('x', 'proto', { headers: headers() });
    await b.start();
    const deadline = Date.now() + 10_000;
    while (seen.length === 0 && Date.now() < deadline) await sleep(20);
    expect(seen).toHaveLength(1);
    expect(Object.hasOwn(seen[0]!.headers, '__proto__')).toBe(true);
    expect(own(seen[0]!.headers)).toEqual({
      plain: 'p',
      ['__proto__']: 'proto-value',
      '%__proto__': 'escaped-looking',
    });
    expect(Object.getPrototypeOf(seen[0]!.headers)).toBe(Object.prototype);
    const dl = peekLock(queue, 'deadLetter');
    const [d] = await receive(dl, 1);
    await dl.completeMessage(d!);
    await dl.close();
    expect(d?.deadLetterReason).toBe('handler-failed');
    // On the wire the name carries one more '%' (a JS client could not read `__proto__`).
    expect(d?.applicationProperties).toMatchObject({
      '%__proto__': 'proto-value',
      '%%__proto__': 'escaped-looking',
    });
  });

  it('through both Functions bindings', async () => {
    const queue = fresh('proto-fn-');
    const seen: Properties[] = [];
    const fn = broker({});
    fn.add('proto', (p) => {
      seen.push(p);
    });
    await broker({ publishTo: queue }).publish('x', 'proto', { headers: headers() });
    await broker({ publishTo: queue }).publish('y', 'proto', { headers: headers() });
    const r = peekLock(queue);
    const [m1, m2] = await receive(r, 2);
    const handler = azureFunctionHandler(fn);
    await handler({ messages: [m1], actions: actionsFor(r) }, invocation([m1!], 'many'));
    await handler(hostInput([m2!], 'one'), invocation([m2!], 'one'));
    await r.completeMessage(m2!);
    await r.close();
    expect(seen).toHaveLength(2);
    for (const p of seen) {
      // The host lower-cases the first letter of property names: `plain` and the others keep theirs.
      expect(own(p.headers)).toEqual({
        plain: 'p',
        ['__proto__']: 'proto-value',
        '%__proto__': 'escaped-looking',
      });
    }
  });
});

describe('issue 9, "logged twice": the plain binding without a poison queue', () => {
  it('logs one line per dead-letter decision and says once why the message comes back', async () => {
    const queue = fresh('fn-nopoison-');
    const logger = recordingLogger();
    const fn = broker({ logger });
    fn.add('sum', () => undefined);
    const sender = client.createSender(queue);
    await sender.sendMessages([
      { body: Buffer.from('{not json'), contentType: 'application/json', subject: 'sum' },
      { body: Buffer.from('{nor this'), contentType: 'application/json', subject: 'sum' },
    ]);
    await sender.close();
    const r = peekLock(queue);
    const msgs = await receive(r, 2);
    const handler = azureFunctionHandler(fn);
    for (const m of msgs) {
      const err = await handler(hostInput([m], 'one', 'binary'), invocation([m], 'one')).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CloudmomError);
      expect((err as Error).message).toMatch(/cannot/);
      await r.abandonMessage(m); // what the host does with a failed invocation
    }
    await r.close();
    for (const m of msgs) {
      const about = logger.lines.filter((l) => l.fields.messageId === String(m.messageId));
      expect(about.map((l) => l.message)).toEqual(['message dead-lettered']);
    }
    expect(logger.lines.filter((l) => /failed/.test(l.message))).toEqual([]);
    // The explanation, once for the handler (not once per message).
    expect(logger.lines.filter((l) => /cannot dead-letter/.test(l.message))).toHaveLength(1);
  });
});
