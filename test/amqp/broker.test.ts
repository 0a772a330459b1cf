/**
 * AmqpBroker against the real RabbitMQ, beyond the conformance suite: confirms and
 * persistence, unroutable and failed publishes, prefetch, draining, a dropped connection,
 * RabbitMQ's own delivery limit, foreign publishers and RPC clients, request() timing.
 */
import { execFile } from 'node:child_process';
import { CloudmomError, InvalidMessageError, SendError } from 'cloudmom';
import { AmqpBroker, UnroutableError } from 'cloudmom/amqp';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { rabbitmqctl } from '../emulators/amqp/rabbitmq.ts';
import { closeTestConnection, type Topology, testConnection, topology, url } from './fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A logger that keeps the messages of its warn and error lines. */
function recordingWarnings() {
  const warnings: string[] = [];
  const logger = {
    debug() {},
    info() {},
    warn: (m: string) => warnings.push(m),
    error: (m: string) => warnings.push(m),
  };
  return { warnings, logger };
}

let t: Topology | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});
afterAll(() => closeTestConnection());

describe('AmqpBroker on RabbitMQ', () => {
  it('publish resolves once confirmed: the message is already in the queue, persistent, with its properties', async () => {
    t = await topology();
    const b = t.broker({ logger: false });
    const id = await b.publish({ n: 1 }, 'orders', {
      correlationId: 'c-1',
      replyTo: 'cloudmom.reply.x',
      headers: { tenant: 'a' },
    });
    const m = await testConnection().basicGet({ queue: t.queue, noAck: true });
    expect(m).toBeDefined();
    expect(m!.routingKey).toBe('orders');
    expect(m!.exchange).toBe(t.exchange);
    expect(m!.durable).toBe(true);
    expect(m!.messageId).toBe(id);
    expect(m!.correlationId).toBe('c-1');
    expect(m!.replyTo).toBe('cloudmom.reply.x');
    expect(m!.contentType).toBe('application/json');
    expect(m!.headers).toMatchObject({ tenant: 'a', target: 'orders' }); // + quorum's x-delivery-count
    expect(m!.body).toEqual({ n: 1 });
    await b.stop();
  });

  it('a batch of publishes leaves in a few socket writes, not one each (the socket corked around it)', async () => {
    t = await topology();
    const { Connection } = await import('rabbitmq-client');
    const conn = new Connection({ url: url(), frameMax: 131072, noDelay: true });
    try {
      const b = t.broker({ logger: false, connection: conn });
      await b.publish({ n: -1 }, 'orders'); // channel set up and confirming
      // rabbitmq-client 5.x keeps its socket here; cloudmom corks it while a batch is written
      const socket = (conn as unknown as { _socket: Record<string, (...a: unknown[]) => unknown> })
        ._socket;
      let writes = 0;
      for (const name of ['_write', '_writev']) {
        const original = socket[name]!;
        socket[name] = function (this: unknown, ...args: unknown[]) {
          writes++;
          return original.apply(this, args);
        };
      }
      const ids = await Promise.all(
        Array.from({ length: 100 }, (_, i) => b.publish({ i }, 'orders')),
      );
      expect(new Set(ids).size).toBe(100);
      expect(writes).toBeGreaterThan(0);
      expect(writes).toBeLessThan(20);
      const q = await testConnection().queueDeclare({ queue: t.queue, passive: true });
      expect(q.messageCount).toBe(101);
      await b.stop();
    } finally {
      await conn.close();
    }
  });

  it('a publish no queue takes fails with SendError caused by UnroutableError (not retryable)', async () => {
    t = await topology();
    const b = t.broker({ logger: false, exchange: `${t.exchange}-empty` });
    const err = await b.publish('x', 'nowhere').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendError);
    expect((err as SendError).retryable).toBe(false);
    expect((err as SendError).cause).toBeInstanceOf(UnroutableError);
    expect(((err as SendError).cause as UnroutableError).routingKey).toBe('nowhere');
    // concurrent publishes: only the unroutable ones fail
    const routed = t.broker({ logger: false, exchange: t.exchange, bindings: ['only.*'] });
    await testConnection().queueUnbind({ queue: t.queue, exchange: t.exchange, routingKey: '#' });
    await routed.start(); // binds only.*
    const outcomes = await Promise.allSettled([
      routed.publish(1, 'only.a'),
      routed.publish(2, 'other'),
      routed.publish(3, 'only.b'),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    await b.stop();
    await routed.stop();
    await testConnection().exchangeDelete({ exchange: `${t.exchange}-empty` });
  });

  it('a publish to a missing exchange fails (not retryable) and the next publish works again', async () => {
    t = await topology();
    const b = t.broker({ logger: false, exchange: `${t.exchange}-missing`, declare: false });
    const err = await b.publish('x', 'a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudmomError);
    expect((err as CloudmomError).code).toBe('not-found');
    expect((err as CloudmomError).retryable).toBe(false);
    expect(String((err as CloudmomError).cause)).toMatch(/NOT_FOUND/);
    await testConnection().exchangeDeclare({
      exchange: `${t.exchange}-missing`,
      type: 'topic',
      durable: true,
    });
    await testConnection().queueBind({
      queue: t.queue,
      exchange: `${t.exchange}-missing`,
      routingKey: '#',
    });
    await expect(b.publish('y', 'a')).resolves.toBeTypeOf('string');
    await b.stop();
    await testConnection().exchangeDelete({ exchange: `${t.exchange}-missing` });
  });

  it('refuses at publish what AMQP cannot carry: long routing keys, oversize headers', async () => {
    t = await topology();
    const b = t.broker({ logger: false });
    await expect(b.publish('x', 'k'.repeat(256))).rejects.toBeInstanceOf(InvalidMessageError);
    await expect(b.publish('x', 't', { headers: { big: 'v'.repeat(140_000) } })).rejects.toThrow(
      /frame_max/,
    );
    await expect(b.publish('x', 't', { headers: { 'x-death': 'no' } })).rejects.toBeInstanceOf(
      InvalidMessageError,
    );
    await b.stop();
  });

  it('prefetch = concurrency: RabbitMQ hands out no more than the broker runs', async () => {
    t = await topology();
    const b = t.broker({ logger: false, concurrency: 3 });
    let active = 0;
    let peak = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let done = 0;
    b.add('work', async () => {
      active++;
      peak = Math.max(peak, active);
      await gate;
      active--;
      done++;
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => b.publish(i, 'work')));
    await b.start();
    await until('3 running', () => active === 3);
    await sleep(200);
    const { messageCount } = await testConnection().queueDeclare({ queue: t.queue, passive: true });
    expect(messageCount).toBe(7); // the other 7 are still ready in the queue, not buffered here
    release();
    await until('all 10 done', () => done === 10);
    expect(peak).toBe(3);
    await b.stop();
  });

  it('acks finished out of order go at once: a message still in hand holds none back, none comes twice', async () => {
    t = await topology();
    const { warnings, logger } = recordingWarnings();
    const b = t.broker({ logger, concurrency: 5 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seen = new Map<number, number>();
    b.add('work', async (_p, n) => {
      seen.set(n as number, (seen.get(n as number) ?? 0) + 1);
      if (n === 0) await gate;
    });
    await Promise.all(Array.from({ length: 40 }, (_, i) => b.publish(i, 'work')));
    await b.start();
    // with message 0 unacked, prefetch 5 leaves 4 slots: the other 39 pass through them only
    // if their acks are sent without waiting for 0's
    await until('the other 39 handled', () => seen.size === 40);
    release();
    await until('the queue empty and nothing unacked', async () => {
      const q = await testConnection().queueDeclare({ queue: t!.queue, passive: true });
      return q.messageCount === 0 && b.stats.acked === 40;
    });
    await sleep(300);
    await b.stop();
    const q = await testConnection().queueDeclare({ queue: t.queue, passive: true });
    expect(q.messageCount).toBe(0); // nothing given back unacked at stop
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('stop() gives back what was prefetched but not run: nothing lost', async () => {
    t = await topology();
    const first = t.broker({ logger: false, concurrency: 2, prefetch: 10 });
    const seen: number[] = [];
    let started = 0;
    first.add('drain', async (_p, n: number) => {
      started++;
      await sleep(300);
      seen.push(n);
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => first.publish(i, 'drain')));
    await first.start();
    await until('two started', () => started >= 2);
    await first.stop();
    expect(seen.length).toBe(2);
    const second = t.broker({ logger: false, concurrency: 10 });
    second.add('drain', (_p, n: number) => {
      seen.push(n);
    });
    await second.start();
    await until('all 10', () => seen.length >= 10);
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await second.stop();
  });

  it.runIf(inject('amqpCtl'))(
    'a dropped connection is recovered: in-flight deliveries come again, none lost, none settled on the new channel',
    async () => {
      t = await topology();
      const { warnings, logger } = recordingWarnings();
      const b = t.broker({
        logger,
        concurrency: 5,
        connectionOptions: { retryLow: 100, retryHigh: 500 },
      });
      const handled = new Map<number, number>();
      const inFlight = new Set<number>();
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      b.add('survive', async (_p, n: number) => {
        inFlight.add(n);
        await gate; // the first five are in the handlers while the connection drops
        handled.set(n, (handled.get(n) ?? 0) + 1);
      });
      await b.start();
      await Promise.all(Array.from({ length: 20 }, (_, i) => b.publish(i, 'survive')));
      await until('five in flight', () => inFlight.size === 5);
      const first = new Set(inFlight);
      await rabbitmqctlAsync(['close_all_connections', 'cloudmom test: connection drop']);
      await until('the channel lost', () =>
        warnings.includes('AMQP consumer channel closed; recovering'),
      );
      release(); // their acks go to the dead channel: settled nowhere, RabbitMQ redelivers them
      // publishing goes on after the drop: the publisher reconnects
      await until(
        'publish after reconnect',
        async () => b.publish(100, 'survive').catch(() => undefined),
        30_000,
      );
      await until(
        'all handled',
        () => [...Array.from({ length: 20 }, (_, i) => i), 100].every((n) => handled.has(n)),
        30_000,
      );
      await sleep(500);
      // only the five in flight at the drop ran twice; the old tags were never used on the new
      // channel (that would have closed it: PRECONDITION_FAILED, and a second recovery)
      const twice = [...handled.entries()].filter(([, c]) => c > 1).map(([n]) => n);
      expect(twice.sort((a, b) => a - b)).toEqual([...first].sort((a, b) => a - b));
      expect(warnings.filter((w) => w === 'AMQP consumer channel closed; recovering')).toHaveLength(
        1,
      );
      expect(warnings).toContain('AMQP consumer channel closed; recovering');
      const { messageCount } = await testConnection().queueDeclare({
        queue: t.queue,
        passive: true,
      });
      expect(messageCount).toBe(0);
      await b.stop();
    },
    60_000,
  );

  it('a quorum queue declared with deliveryLimit: RabbitMQ dead-letters a message returned too often', async () => {
    t = await topology();
    // a queue of its own, declared by the broker with the delivery limit
    const queue = `${t.queue}-limited`;
    const b = t.broker({
      logger: false,
      queue,
      bindings: ['limited'],
      deliveryLimit: 1,
      deadLetterQueue: t.deadLetterQueue,
    });
    await b.start(); // declares the queue with x-delivery-limit
    await b.stop();
    await t.broker({ logger: false }).publish('poison pill', 'limited');
    const conn = testConnection();
    for (let i = 0; i < 2; i++) {
      // a consumer that gives the message back (as one that crashes would)
      const ch = await conn.acquire();
      const m = await until('a delivery', () => ch.basicGet({ queue }));
      ch.basicNack({ deliveryTag: m.deliveryTag, requeue: true });
      await ch.close();
    }
    const dead = await until('the dead letter', async () => (await t!.deadLetters())[0]);
    expect(dead.headers['x-first-death-reason']).toBe('delivery_limit');
    expect(dead.headers.target).toBe('limited');
    expect(dead.body).toBe('poison pill');
    await conn.queueDelete({ queue });
  });

  it('handles messages from foreign publishers: routing key as target, exact JSON and text content types, typed headers', async () => {
    t = await topology();
    const b = t.broker({ logger: false });
    const seen: {
      target: string;
      body: unknown;
      headers: Record<string, string>;
      id: string;
      count: number;
    }[] = [];
    b.add('foreign', (p, body) => {
      seen.push({
        target: p.target,
        body,
        headers: { ...p.headers },
        id: p.messageId,
        count: p.deliveryCount,
      });
    });
    await b.start();
    await t.publishRaw({
      routingKey: 'foreign',
      body: '{"from":"pika"}',
      contentType: 'application/json',
      headers: { n: 7, ok: true, s: 'str' },
    });
    await t.publishRaw({ routingKey: 'foreign', body: 'plain text', contentType: 'text/plain' });
    await t.publishRaw({
      routingKey: 'foreign',
      body: new Uint8Array([1, 2, 3]),
      contentType: 'application/octet-stream',
    });
    await until('three messages', () => seen.length >= 3);
    expect(seen.map((s) => s.target)).toEqual(['foreign', 'foreign', 'foreign']);
    expect(seen[0]!.body).toEqual({ from: 'pika' });
    expect(seen[0]!.headers).toEqual({ n: '7', ok: 'true', s: 'str' });
    expect(seen[1]!.body).toBe('plain text');
    expect(Array.from(seen[2]!.body as Uint8Array)).toEqual([1, 2, 3]);
    expect(new Set(seen.map((s) => s.id)).size).toBe(3); // ids made up for messages without one
    expect(seen.every((s) => s.count === 1)).toBe(true);
    await b.stop();
  });

  it('answers a foreign RPC client using direct reply-to (amq.rabbitmq.reply-to is allowed by default)', async () => {
    t = await topology();
    const b = t.broker({ logger: false });
    b.add('echo', (_p, body: string) => `echo: ${body}`);
    await b.start();
    const rpc = testConnection().createRPCClient({ confirm: true, timeout: 10_000 });
    const res = await rpc.send({ exchange: t.exchange, routingKey: 'echo' }, 'hi');
    // the client decodes only an exact text/plain; ours says text/plain; charset=utf-8
    expect(String(res.body)).toBe('echo: hi');
    expect(res.contentType).toBe('text/plain; charset=utf-8');
    await rpc.close();
    await b.stop();
  });

  it('request() round trips through the per-instance reply queue; the queue is deleted on stop()', async () => {
    t = await topology();
    const responder = t.broker({ logger: false, concurrency: 20 });
    responder.add('ping', () => 'pong');
    await responder.start();
    const requester = new AmqpBroker({ url: url(), exchange: t.exchange, logger: false });
    await requester.request('warm', 'ping');
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await requester.request(i, 'ping');
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const p50 = times[50]!;
    const p99 = times[98]!;
    console.log(
      `amqp request() round trip: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (100 sequential)`,
    );
    expect(p50).toBeLessThan(20); // ~2 ms here; ~45 ms without TCP_NODELAY
    const queues = rabbitQueues();
    await requester.stop();
    if (queues) {
      const reply = queues().find((q) => q.startsWith('cloudmom.reply.'));
      expect(reply).toBeUndefined();
    }
    await responder.stop();
  });
});

/** rabbitmqctl without blocking the event loop (the broker must see the drop as it happens). */
function rabbitmqctlAsync(args: string[]): Promise<void> {
  const ctl = inject('amqpCtl')!;
  return new Promise((resolve, reject) =>
    execFile(
      '/usr/lib/rabbitmq/bin/rabbitmqctl',
      ['-n', ctl.node, ...args],
      { env: { ...process.env, ...ctl.env } },
      (err) => (err ? reject(err) : resolve()),
    ),
  );
}

/** Lists queue names with rabbitmqctl, when the node is this run's. */
function rabbitQueues(): (() => string[]) | undefined {
  const ctl = inject('amqpCtl');
  if (!ctl) return undefined;
  return () =>
    rabbitmqctl(ctl, ['list_queues', 'name', '--quiet', '--no-table-headers'])
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
}
