/**
 * KafkaBroker behaviour beyond the conformance suite, on the real Kafka: the commit watermark
 * with out-of-order settlement across a restart, order per key across failures, the content
 * of dead-letter records, two instances sharing the reply topic, a rebalance, options.
 */
import { InvalidArgumentError, type Properties } from 'cloudmom';
import { KafkaBroker } from 'cloudmom/kafka';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FAST_GROUP, Kafka, type Topology, topology } from './fixture.ts';

const kafka = new Kafka();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(() => kafka.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

async function fresh(partitions = 3): Promise<Topology> {
  const t = await topology(kafka, partitions);
  cleanups.push(() => t.cleanup());
  return t;
}

function started(t: Topology, options: Parameters<Topology['broker']>[0] = {}): KafkaBroker {
  const b = t.broker({
    logger: false,
    maxDeliveries: 3,
    retry: { baseDelayMs: 50, maxDelayMs: 200 },
    ...options,
  });
  cleanups.push(() => b.stop());
  return b;
}

describe('KafkaBroker: commits', () => {
  it('never commits past an unsettled record: settled out of order, restarted, nothing skipped', async () => {
    const t = await fresh(1);
    // Broker A: record 0 fails with a long retry delay, records 1..9 (other keys) succeed.
    const a = started(t, { retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    const seenA: number[] = [];
    a.add('job', (_p: Properties, body: { i: number }) => {
      if (body.i === 0) throw new Error('not yet');
      seenA.push(body.i);
    });
    await a.start();
    for (let i = 0; i < 10; i++) await a.publish({ i }, 'job', { groupKey: `k${i}` });
    await until('records 1..9 on A', () => seenA.length >= 9);
    await sleep(500);
    // Everything after offset 0 is settled, yet the watermark stays at 0.
    const before = await kafka.committed(t.groupId, t.topic);
    expect(before[0] === undefined || before[0] <= 0n).toBe(true);
    await a.stop();

    // Broker B in the same group: record 0 comes again (nothing skipped), then the watermark moves.
    const b = started(t);
    const seenB: number[] = [];
    b.add('job', (_p: Properties, body: { i: number }) => {
      seenB.push(body.i);
    });
    await b.start();
    await until('record 0 on B', () => seenB.includes(0));
    await until('all ten on B', () => seenB.length >= 10);
    await until('commit at 10', async () =>
      (await kafka.committed(t.groupId, t.topic))[0] === 10n ? true : undefined,
    );
    expect(seenB.sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('commits the watermark as records settle, and stop() leaves nothing to redeliver', async () => {
    const t = await fresh(3);
    const a = started(t);
    let n = 0;
    a.add('w', () => {
      n++;
    });
    await a.start();
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => a.publish({ i }, 'w', { groupKey: `g${i % 7}` })),
    );
    await until('60 handled', () => n >= 60);
    await a.stop();
    const committed = await kafka.committed(t.groupId, t.topic, 3);
    const records = await kafka.read(t.topic);
    for (let p = 0; p < 3; p++) {
      const count = BigInt(records.filter((r) => r.partition === p).length);
      expect(committed[p] ?? 0n, `partition ${p}`).toBe(count);
    }
  });
});

describe('KafkaBroker: order', () => {
  it('keeps order per key across failures and retries (other keys go on)', async () => {
    const t = await fresh(3);
    const b = started(t, { concurrency: 20, maxDeliveries: 5 });
    const done = new Map<string, number[]>();
    const attempts = new Map<string, number>();
    b.add('ordered', async (p: Properties, body: { g: string; i: number }) => {
      const id = `${body.g}/${body.i}`;
      attempts.set(id, (attempts.get(id) ?? 0) + 1);
      await sleep(Math.random() * 3);
      // every fifth message fails twice before it succeeds
      if (body.i % 5 === 2 && p.deliveryCount < 3) throw new Error('transient');
      const list = done.get(body.g) ?? [];
      list.push(body.i);
      done.set(body.g, list);
    });
    await b.start();
    const groups = ['g1', 'g2', 'g3', 'g4'];
    const sends: Promise<string>[] = [];
    for (let i = 0; i < 20; i++)
      for (const g of groups) sends.push(b.publish({ g, i }, 'ordered', { groupKey: g }));
    await Promise.all(sends);
    await until('80 handled', () => [...done.values()].reduce((n, l) => n + l.length, 0) >= 80);
    for (const g of groups) expect(done.get(g)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(attempts.get('g1/2')).toBe(3);
    expect(b.stats.retried).toBe(2 * 4 * 4);
  });

  it('keyless records keep partition order by default; orderKeyless: false runs them concurrently', async () => {
    const t = await fresh(1);
    const b = started(t, { concurrency: 10 });
    const order: number[] = [];
    let active = 0;
    let peak = 0;
    b.add('seq', async (_p: Properties, body: number) => {
      active++;
      peak = Math.max(peak, active);
      await sleep(Math.random() * 4);
      order.push(body);
      active--;
    });
    await b.start();
    for (let i = 0; i < 30; i++) await b.publish(i, 'seq');
    await until('30 in order', () => order.length >= 30);
    expect(order).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(peak).toBe(1);
    await b.stop();

    const c = started(t, { concurrency: 10, orderKeyless: false, groupId: `${t.groupId}-2` });
    let peak2 = 0;
    let active2 = 0;
    let n = 0;
    c.add('seq', async () => {
      active2++;
      peak2 = Math.max(peak2, active2);
      await sleep(20);
      active2--;
      n++;
    });
    await c.start();
    await until('30 again', () => n >= 30);
    expect(peak2).toBeGreaterThan(1);
  });
});

describe('KafkaBroker: dead letters', () => {
  it('a dead-letter record keeps key, body, ids and headers, and says why and after how many deliveries', async () => {
    const t = await fresh(3);
    const b = started(t, { maxDeliveries: 3 });
    b.add('fails', () => {
      throw new TypeError('database unreachable');
    });
    await b.start();
    const id = await b.publish({ order: 7 }, 'fails', {
      groupKey: 'customer-7',
      correlationId: 'corr-7',
      headers: { tenant: 'acme' },
    });
    const [d] = await until('the dead letter', async () => {
      const r = await kafka.read(t.deadLetterTopic);
      return r.length > 0 ? r : undefined;
    });
    expect(d!.key?.toString()).toBe('customer-7');
    expect(JSON.parse(d!.value!.toString())).toEqual({ order: 7 });
    expect(d!.headers).toMatchObject({
      target: 'fails',
      message_id: id,
      correlation_id: 'corr-7',
      content_type: 'application/json',
      tenant: 'acme',
      dead_letter_reason: 'handler-failed',
      delivery_count: '3',
    });
    expect(d!.headers.dead_letter_description).toContain('TypeError: database unreachable');
    expect(b.deadLetterTopic()).toBe(t.deadLetterTopic);
    // the partition's watermark moved past the dead-lettered record
    await b.stop();
    const committed = await kafka.committed(t.groupId, t.topic, 3);
    expect(committed.reduce((n, x) => n + (x > 0n ? x : 0n), 0n)).toBe(1n);
  });

  it('poison (own headers not UTF-8, no target) is dead-lettered at once and the lane goes on', async () => {
    const t = await fresh(1);
    const b = started(t);
    const seen: string[] = [];
    b.add('ok', (_p: Properties, body: string) => {
      seen.push(body);
    });
    await b.start();
    await kafka.produce(t.topic, {
      value: Buffer.from('x'),
      headers: { target: Buffer.from([0xc3, 0x28]) },
    });
    await kafka.produce(t.topic, {
      value: Buffer.from('{}'),
      headers: { content_type: 'application/json' },
    });
    await b.publish('after', 'ok');
    await until('the good one', () => seen.includes('after'));
    const dead = await until('two dead letters', async () => {
      const r = await kafka.read(t.deadLetterTopic);
      return r.length >= 2 ? r : undefined;
    });
    expect(dead.map((d) => d.headers.dead_letter_reason).sort()).toEqual([
      'missing-target',
      'undecodable',
    ]);
    expect(dead.every((d) => d.headers.delivery_count === '1')).toBe(true);
    expect(b.stats.retried).toBe(0);
  });

  it('deadLetterTopic names one dead-letter topic for every source topic', async () => {
    const t = await fresh(1);
    const dlt = `${t.topic}-custom-dlt`;
    await kafka.createTopics([dlt]);
    cleanups.push(() => kafka.deleteTopics([dlt]));
    const b = started(t, { deadLetterTopic: dlt, unknownTarget: 'dead-letter' });
    b.add('known', () => undefined);
    await b.start();
    await b.publish('x', 'nobody');
    const [d] = await until('the dead letter', async () => {
      const r = await kafka.read(dlt);
      return r.length > 0 ? r : undefined;
    });
    expect(d!.headers.dead_letter_reason).toBe('unknown-target');
  });
});

describe('KafkaBroker: replies', () => {
  it('two instances share the reply topic: each gets only its own replies', async () => {
    const t = await fresh(3);
    const responder = started(t, { concurrency: 20 });
    responder.add('who', (_p: Properties, body: { from: string; n: number }) => body);
    await responder.start();
    const a = started(t, { groupId: `${t.groupId}-a` });
    const b = started(t, { groupId: `${t.groupId}-b` });
    const strayA: unknown[] = [];
    const strayB: unknown[] = [];
    a.add('reply', (_p: Properties, body: unknown) => {
      strayA.push(body);
    });
    b.add('reply', (_p: Properties, body: unknown) => {
      strayB.push(body);
    });
    const [ra, rb] = await Promise.all([
      Promise.all(Array.from({ length: 30 }, (_, n) => a.request({ from: 'a', n }, 'who'))),
      Promise.all(Array.from({ length: 30 }, (_, n) => b.request({ from: 'b', n }, 'who'))),
    ]);
    expect(ra.map((r) => r.body)).toEqual(Array.from({ length: 30 }, (_, n) => ({ from: 'a', n })));
    expect(rb.map((r) => r.body)).toEqual(Array.from({ length: 30 }, (_, n) => ({ from: 'b', n })));
    await sleep(300);
    expect(strayA).toEqual([]);
    expect(strayB).toEqual([]);
    // the replies went to the shared topic, keyed by instance
    const replies = await kafka.read(t.replyTopic);
    expect(new Set(replies.map((r) => r.key?.toString())).size).toBe(2);
  });
});

describe('KafkaBroker: rebalance', () => {
  it('a second member joins and the first leaves mid-stream: nothing lost, order per key kept', async () => {
    const t = await fresh(3);
    const handled = new Map<string, number[]>();
    const handler = async (_p: Properties, body: { g: string; i: number }) => {
      await sleep(2);
      const list = handled.get(body.g) ?? [];
      list.push(body.i);
      handled.set(body.g, list);
    };
    const publisher = started(t);
    const a = started(t, { concurrency: 5 });
    a.add('r', handler);
    await a.start();
    const groups = Array.from({ length: 12 }, (_, i) => `key-${i}`);
    const publishing = (async () => {
      for (let i = 0; i < 50; i++) {
        await Promise.all(groups.map((g) => publisher.publish({ g, i }, 'r', { groupKey: g })));
        await sleep(10);
      }
    })();
    await sleep(200);
    const b = started(t, { concurrency: 5 });
    b.add('r', handler);
    await b.start();
    await sleep(400);
    await a.stop();
    await publishing;
    const total = groups.length * 50;
    await until(
      'every message handled at least once',
      () => groups.every((g) => new Set(handled.get(g) ?? []).size === 50) || undefined,
      40_000,
    ).catch(async (err) => {
      const missing = groups.map((g) => `${g}:${50 - new Set(handled.get(g) ?? []).size}`);
      throw new Error(`${err.message}; missing per key ${missing.join(' ')} of ${total}`);
    });
    for (const g of groups) {
      // duplicates may come after a rebalance, but each key's first sightings are in order
      const firsts: number[] = [];
      const seen = new Set<number>();
      for (const i of handled.get(g)!)
        if (!seen.has(i)) {
          seen.add(i);
          firsts.push(i);
        }
      expect(firsts, g).toEqual(Array.from({ length: 50 }, (_, i) => i));
    }
  }, 60_000);
});

describe('KafkaBroker: options', () => {
  it('refuses bad options with InvalidArgumentError', () => {
    const base = { brokers: kafka.brokers, logger: false as const };
    expect(() => new KafkaBroker({} as never)).toThrow(InvalidArgumentError);
    expect(() => new KafkaBroker({ ...base, brokers: ['nohost'] })).toThrow(InvalidArgumentError);
    expect(() => new KafkaBroker({ ...base, topic: 'bad topic' })).toThrow(InvalidArgumentError);
    expect(() => new KafkaBroker({ ...base, group: { session: 1 } as never })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new KafkaBroker({ ...base, prefetch: 0 })).toThrow(InvalidArgumentError);
    expect(() => new KafkaBroker({ ...base, startFrom: 'middle' as never })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new KafkaBroker({ ...base, compression: 'brotli' as never })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new KafkaBroker({ ...base, topc: 'x' } as never)).toThrow(InvalidArgumentError);
    const b = new KafkaBroker({ ...base, brokers: kafka.brokers.join(','), group: FAST_GROUP });
    expect(b.capabilities).toMatchObject({
      name: 'kafka',
      ordering: true,
      deadLetter: 'copy',
      maxDelaySeconds: 0,
    });
    expect(b.deadLetterTopic('orders')).toBe('orders.dlt');
  });

  it('exposes the native producer and consumer', async () => {
    const t = await fresh(1);
    const b = started(t);
    const { producer, consumer } = b.client;
    expect(producer.constructor.name).toBe('Producer');
    expect(consumer.groupId).toBe(t.groupId);
    expect(b.client.producer).toBe(producer);
  });
});
