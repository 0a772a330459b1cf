/**
 * The receive loop the core owns (src/receiver.ts) and the defects of the old contract, on
 * small in-process transports: no platform, no peer — what is tested is the core's own logic.
 */
import { execFileSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Broker, type BrokerOptions, MemoryBroker, MemoryHub } from 'cloudmom';
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../src/entrypoint.ts';
import type {
  Capabilities,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Source,
  Transport,
} from '../../src/transport.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CAPS: Capabilities = {
  name: 'test',
  maxMessageBytes: 1 << 20,
  maxBatchMessages: 10,
  maxBatchBytes: 1 << 20,
  batchLingerMs: 0,
  ordering: true,
  maxDelaySeconds: 0,
  nackDelay: true,
  deadLetter: 'copy',
  request: false,
  defaultReplyAllowList: [],
};

/** A queue in an array: enough of a platform to drive the core's loop. */
class ArraySource implements Source {
  readonly name = 'array';
  maxReceive = 10;
  parallelReceives = 1;
  readonly maxAckBatch: number;
  readonly queue: IncomingMessage[] = [];
  readonly acked: unknown[] = [];
  ackCalls = 0;
  readonly nacked: { id: unknown; failed: boolean }[] = [];
  failReceives = 0;
  receives = 0;
  #wake: (() => void) | undefined;
  closed = 0;

  constructor(maxAckBatch = 1) {
    this.maxAckBatch = maxAckBatch;
  }

  push(m: IncomingMessage): void {
    this.queue.push(m);
    this.#wake?.();
  }

  async receive(max: number, signal: AbortSignal): Promise<IncomingMessage[]> {
    this.receives++;
    if (this.failReceives > 0) {
      this.failReceives--;
      throw new Error('throttled');
    }
    if (this.queue.length === 0 && !signal.aborted)
      await new Promise<void>((r) => {
        this.#wake = r;
        signal.addEventListener('abort', () => r(), { once: true });
      });
    return this.queue.splice(0, max);
  }
  async ack(ids: readonly unknown[]): Promise<void> {
    this.ackCalls++;
    this.acked.push(...ids);
  }
  async nack(id: unknown, _delayMs: number, failed: boolean): Promise<void> {
    this.nacked.push({ id, failed });
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

class TestTransport implements Transport {
  readonly capabilities = CAPS;
  readonly client = {};
  readonly sent: OutgoingMessage[] = [];
  readonly source: ArraySource;
  openFailures = 0;
  closes = 0;
  constructor(source = new ArraySource()) {
    this.source = source;
  }
  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    this.sent.push(...batch);
    return batch.map((m) => ({ ok: true, messageId: m.messageId }));
  }
  async open(): Promise<Source[]> {
    if (this.openFailures > 0) {
      this.openFailures--;
      throw new Error('queue does not exist yet');
    }
    return [this.source];
  }
  deadLetterAddress(): string {
    return 'dlq';
  }
  isRetryable(): boolean {
    return true;
  }
  async close(): Promise<void> {
    this.closes++;
  }
}

class TestBroker extends Broker {
  constructor(transport: Transport, options: BrokerOptions = {}) {
    super(transport, { logger: false, ...options });
  }
}

let seq = 0;
function msg(body: unknown, extra: Partial<IncomingMessage> = {}): IncomingMessage {
  const text = JSON.stringify(body);
  const id = `m${++seq}`;
  return {
    body: new TextEncoder().encode(text),
    text,
    target: 't',
    messageId: id,
    contentType: 'application/json',
    headers: {},
    deliveryCount: 1,
    ackId: id,
    raw: {},
    ...extra,
  };
}

async function until(what: string, probe: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('the receive loop', () => {
  it('acks in batches of maxAckBatch (SQS DeleteMessageBatch) and settles every message once', async () => {
    const t = new TestTransport(new ArraySource(10));
    const b = new TestBroker(t, { concurrency: 20 });
    b.add('t', () => undefined);
    for (let i = 0; i < 100; i++) t.source.push(msg({ i }));
    await b.start();
    await until('100 acks', () => t.source.acked.length >= 100);
    await b.stop();
    expect(new Set(t.source.acked).size).toBe(100);
    expect(t.source.ackCalls).toBeLessThanOrEqual(20);
    expect(t.source.closed).toBe(1);
  });

  it('never has more than `concurrency` messages in hand', async () => {
    const t = new TestTransport();
    const b = new TestBroker(t, { concurrency: 3 });
    let running = 0;
    let peak = 0;
    b.add('t', async () => {
      running++;
      peak = Math.max(peak, running);
      await sleep(10);
      running--;
    });
    for (let i = 0; i < 30; i++) t.source.push(msg({ i }));
    await b.start();
    await until('30 acks', () => t.source.acked.length >= 30);
    await b.stop();
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('after a failure, later messages of the same group key in hand are released unrun', async () => {
    const t = new TestTransport();
    const b = new TestBroker(t, { concurrency: 10 });
    const ran: number[] = [];
    b.add('t', async (_p, body: { i: number }) => {
      ran.push(body.i);
      await sleep(5);
      if (body.i === 0) throw new Error('boom');
    });
    for (let i = 0; i < 4; i++) t.source.push(msg({ i }, { groupKey: 'g' }));
    t.source.push(msg({ i: 9 }, { groupKey: 'other' }));
    await b.start();
    await until(
      '4 nacks and 1 ack',
      () => t.source.nacked.length >= 4 && t.source.acked.length >= 1,
    );
    await b.stop();
    expect(ran.sort()).toEqual([0, 9]);
    expect(t.source.nacked.map((n) => n.failed)).toEqual([true, false, false, false]);
  });

  it('a receive failure is logged and retried with backoff; stop() cuts the backoff short', async () => {
    const t = new TestTransport();
    const lines: string[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (m: string) => lines.push(m) };
    const b = new TestBroker(t, { logger });
    b.add('t', () => undefined);
    t.source.failReceives = 3;
    t.source.push(msg({ i: 1 }));
    await b.start();
    await until('the message after three failures', () => t.source.acked.length === 1, 10_000);
    expect(lines.filter((l) => l.includes('receiving failed'))).toHaveLength(3);
    t.source.failReceives = 1000;
    await sleep(50);
    const started = Date.now();
    await b.stop();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a failed start() is reported and a second start() tries again (the old state stuck at "started")', async () => {
    const t = new TestTransport();
    t.openFailures = 1;
    const b = new TestBroker(t);
    const got: number[] = [];
    b.add('t', (_p, body: { i: number }) => {
      got.push(body.i);
    });
    t.source.push(msg({ i: 1 }));
    await expect(b.start()).rejects.toThrow(/does not exist yet/);
    await b.start();
    await until('the message', () => got.length === 1);
    await b.stop();
  });

  it('two concurrent stop() calls close the transport once', async () => {
    const t = new TestTransport();
    const b = new TestBroker(t);
    await b.start();
    await Promise.all([b.stop(), b.stop(), b.stop()]);
    await b.stop();
    expect(t.closes).toBe(1);
    expect(t.source.closed).toBe(1);
  });

  it('poison marked by the decoder is dead-lettered by copy with its reason, then acked', async () => {
    const t = new TestTransport();
    const b = new TestBroker(t);
    b.add('t', () => undefined);
    t.source.push(msg('x', { poison: { code: 'undecodable', description: 'not base64' } }));
    await b.start();
    await until('the ack', () => t.source.acked.length === 1);
    await b.stop();
    const [copy] = t.sent;
    expect(copy?.destination).toBe('dlq');
    expect(copy?.deadLetter).toMatchObject({
      code: 'undecodable',
      description: 'not base64',
      deliveryCount: 1,
    });
  });
});

describe('defects of the old receive path', () => {
  it('several replies where a later one cannot be encoded: nothing is sent, no unhandled rejection', async () => {
    const t = new TestTransport();
    const b = new TestBroker(t, { maxDeliveries: 1 });
    b.add('t', () => 'first reply', 'answers');
    b.add('t', () => ({ big: 10n }), 'answers'); // a BigInt: JSON cannot encode it
    const [v] = await dispatch(b, [msg('q')]);
    // the message is dead-lettered (last delivery), by copy; the first reply was never sent
    expect(v?.kind).toBe('ack');
    expect(t.sent.filter((m) => m.target === 'answers')).toEqual([]);
    expect(t.sent.filter((m) => m.deadLetter?.code === 'reply-failed')).toHaveLength(1);
    await b.stop();
  });

  it('memory does not grow with distinct unknown targets (20,000 × 10 KB targets)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const b = new MemoryBroker({ hub: new MemoryHub(), logger: false });
    b.add('known', () => undefined);
    const pad = 'x'.repeat(10_000);
    const batch = (from: number) =>
      Array.from({ length: 1000 }, (_, i) => msg(null, { target: `${pad}${from + i}` }));
    await dispatch(b, batch(0));
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let k = 1; k < 20; k++) await dispatch(b, batch(k * 1000));
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(b.stats.discarded).toBe(20_000);
    // the old unbounded set retained ~200 MB here
    expect(grown).toBeLessThan(20 * 1024 * 1024);
    await b.stop();
  });

  it("the embedded broker's delay timer does not keep the process alive after stop()", () => {
    const script = `
      import { MemoryBroker } from 'cloudmom';
      const b = new MemoryBroker({ logger: false, queue: 'exit-test' });
      b.add('later', () => {});
      await b.start();
      await b.publish('x', 'later', { delaySeconds: 60 });
      await b.stop();
    `;
    const started = Date.now();
    execFileSync(process.execPath, ['--conditions=source', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url).pathname,
      timeout: 20_000,
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('logs carry no message content', () => {
  const MARKER = 'S3CRET-MARKER-7f3a';
  it(`no log line at debug carries text from a body, on publish, receive, reply, schema and dead-letter paths`, async () => {
    const lines: string[] = [];
    const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
      lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
    const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
    const hub = new MemoryHub();
    const b = new MemoryBroker({
      hub,
      queue: 'logs',
      logger,
      maxDeliveries: 2,
      retry: { baseDelayMs: 1, maxDelayMs: 5 },
    });
    const { z } = await import('zod');
    b.add('typed', () => undefined, { schema: z.object({ id: z.number() }) });
    b.add('fails', (_p, body) => {
      throw new Error(`cannot handle ${JSON.stringify(body)}`);
    });
    b.add('echo', (_p, body) => body, 'echoed');
    b.add('echoed', () => undefined);
    b.add('bad-json', () => undefined);
    await b.start();
    await b.publish({ id: MARKER }, 'typed');
    await b.publish({ secret: MARKER }, 'fails', { headers: { note: MARKER } });
    await b.publish(MARKER, 'echo');
    await b.publish(`{"${MARKER}`, 'bad-json', { contentType: 'application/json' }).catch(() => {});
    await until('dead letters', () => b.deadLetters().length >= 2, 10_000);
    await until('the echo reply', () => b.stats.repliesSent >= 1);
    await b.stop();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes(MARKER))).toEqual([]);
    // the reasons on the dead letters keep the detail
    expect(b.deadLetters().some((d) => d.reason.description.includes('id'))).toBe(true);
  });
});

describe('several receive loops on one source', () => {
  it('every loop is woken when room frees up, and stop() returns (one waiter used to be kept)', async () => {
    const source = new ArraySource();
    Object.assign(source, { parallelReceives: 3, maxReceive: 1 });
    const t = new TestTransport(source);
    const b = new TestBroker(t, { concurrency: 2 });
    b.add('t', async () => {
      await sleep(5);
    });
    for (let i = 0; i < 40; i++) source.push(msg({ i }));
    await b.start();
    await until('40 acks', () => source.acked.length >= 40);
    const stopped = Promise.race([b.stop().then(() => 'stopped'), sleep(3000).then(() => 'hung')]);
    expect(await stopped).toBe('stopped');
  });
});

describe('OffsetTracker (Kafka commit watermarks)', () => {
  it('commits only past every settled earlier offset, in any settle order', async () => {
    const { OffsetTracker } = await import('../../src/sources.ts');
    for (let round = 0; round < 200; round++) {
      const t = new OffsetTracker();
      const offsets = Array.from({ length: 30 }, (_, i) => BigInt(100 + i * 2)); // gaps, as compaction leaves
      for (const o of offsets) t.received('p', o);
      const order = [...offsets].sort(() => Math.random() - 0.5);
      const settled = new Set<bigint>();
      let committed = -1n;
      for (const o of order) {
        settled.add(o);
        const c = t.settled('p', o);
        // the reference: one past the longest settled prefix
        let k = 0;
        while (k < offsets.length && settled.has(offsets[k]!)) k++;
        const expected = k === offsets.length ? offsets[k - 1]! + 1n : offsets[k]!;
        if (c !== undefined) {
          expect(c).toBe(expected);
          expect(c > committed).toBe(true);
          committed = c;
        } else expect(expected).toBe(committed === -1n ? offsets[0] : committed);
      }
      expect(committed).toBe(offsets[offsets.length - 1]! + 1n);
      expect(t.pending('p')).toBe(0);
      expect(t.settled('p', offsets[0]!)).toBeUndefined(); // settling twice changes nothing
    }
  });
});
