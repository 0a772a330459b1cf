/**
 * RabbitMQ benchmark, on this run's own node (test/emulators/amqp; `CLOUDMOM_AMQP_URL`
 * replaces it), quorum queue, ~256-byte JSON bodies:
 * - A1 confirmed publish: `AmqpBroker.publish` vs the raw client's confirmed, mandatory,
 *   persistent `Publisher.send` with the same properties, 1,000 outstanding, each on a
 *   connection opened before the rounds (goal ≥ 0.95), `BENCH_A1_ROUNDS` (8) interleaved rounds;
 * - A2 consume: `AmqpBroker.start()` handling a pre-filled queue vs a raw `basic.consume`
 *   loop with the same prefetch (50) acking each message, both on a connection opened before
 *   the rounds and timed from opening their channel and consumer to the last message (goal ≥ 0.9);
 *   each side keeps its first broker or channel referenced (bench/rounds.ts `keepFirst`);
 *   `BENCH_A2_ROUNDS` (8) interleaved rounds;
 * - A3 `request()` round trip p50 (sequential).
 * Warm-up, then interleaved rounds (bench/rounds.ts); medians of each and of the paired ratios.
 */
import { AmqpBroker } from 'cloudmom/amqp';
import { Connection } from 'rabbitmq-client';
import { startRabbitmq } from '../test/emulators/amqp/rabbitmq.ts';
import { BENCH_BODY, rawAmqpPublish } from './anchors.ts';
import { interleave, keepFirst, median, ratioRow } from './rounds.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const N = 10_000;
const WINDOW = 1000;
const PREFETCH = 50;
const body = BENCH_BODY;
const gc = (globalThis as { gc?: () => void }).gc;
// BENCH_ONLY=A1 (or "A1,A3"...) runs only those cases; unset runs all.
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim().toUpperCase());
const wanted = (id: string) => !only || only.includes(id);

async function rate(n: number, fn: () => Promise<void>): Promise<number> {
  gc?.();
  const t0 = performance.now();
  await fn();
  return n / ((performance.now() - t0) / 1000);
}

async function windowed(publish: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < N; i += WINDOW) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + WINDOW); j++) batch.push(publish(j));
    await Promise.all(batch);
  }
}

export const suite: BenchSuite = {
  name: 'amqp (RabbitMQ 3.10, quorum queue)',
  async run(): Promise<BenchRow[]> {
    const peer = await startRabbitmq();
    const conn = new Connection({ url: peer.url, frameMax: 131072, noDelay: true });
    conn.on('error', () => {});
    const exchange = `bench-${Date.now()}`;
    const queue = `${exchange}-q`;
    const opts = { url: peer.url, exchange, queue, logger: false as const, concurrency: PREFETCH };
    try {
      // declares the topology (and is the publisher of A1)
      const broker = new AmqpBroker(opts);
      await broker.start();
      await broker.stop();
      const pub = conn.createPublisher({ confirm: true });
      const rawPublish = rawAmqpPublish(pub, exchange);
      const purge = () => conn.queuePurge({ queue });

      // A1: both sides publish on a connection and channel opened before the rounds (the raw
      // publisher is created once above; the broker opens its own on its first publish, in the
      // warm-up), so the figure is the publish path, not a connection's setup
      const publisher = new AmqpBroker(opts);
      const ours = async () => {
        const r = await rate(N, () =>
          windowed((i) => publisher.publish({ ...body, id: i }, 'bench')),
        );
        await purge();
        return r;
      };
      const theirs = async () => {
        const r = await rate(N, () => windowed(rawPublish));
        await purge();
        return r;
      };
      const a1 = wanted('A1')
        ? await interleave({ ours, raw: theirs }, Number(process.env.BENCH_A1_ROUNDS ?? 8), {
            warmup: 2,
            log: 'A1 publish',
          }).finally(() => publisher.stop())
        : undefined;

      // A2
      const fill = async () => {
        await purge();
        await windowed(rawPublish);
      };
      const consumeOurs = async () => {
        await fill();
        // on the raw side's connection, opened before the rounds: both sides time opening a
        // channel and a consumer, and the drain (not a connection's setup)
        const b = keepFirst('A2 ours', new AmqpBroker({ ...opts, connection: conn }));
        let n = 0;
        let done!: () => void;
        const all = new Promise<void>((r) => {
          done = r;
        });
        b.add('bench', () => {
          if (++n === N) done();
        });
        const r = await rate(N, async () => {
          await b.start();
          await all;
        });
        await b.stop();
        return r;
      };
      const consumeRaw = async () => {
        await fill();
        let ch: Awaited<ReturnType<typeof conn.acquire>> | undefined;
        let n = 0;
        let done!: () => void;
        const all = new Promise<void>((r) => {
          done = r;
        });
        const r = await rate(N, async () => {
          const c = keepFirst('A2 raw', await conn.acquire());
          ch = c;
          await c.basicQos({ prefetchCount: PREFETCH });
          await c.basicConsume({ queue }, (m) => {
            JSON.parse(typeof m.body === 'string' ? m.body : JSON.stringify(m.body));
            c.basicAck({ deliveryTag: m.deliveryTag });
            if (++n === N) done();
          });
          await all;
        });
        await ch?.close();
        return r;
      };
      const a2 = wanted('A2')
        ? await interleave(
            { ours: consumeOurs, raw: consumeRaw },
            Number(process.env.BENCH_A2_ROUNDS ?? 8),
            {
              warmup: 1,
              log: 'A2 consume',
            },
          )
        : undefined;

      // A3
      await purge();
      const responder = new AmqpBroker(opts);
      responder.add('ping', () => 'pong');
      await responder.start();
      const requester = new AmqpBroker({ ...opts, queue: undefined });
      const times: number[] = [];
      for (let i = 0; i < (wanted('A3') ? 50 : 0); i++) await requester.request(i, 'ping');
      for (let i = 0; i < (wanted('A3') ? 500 : 0); i++) {
        const t0 = performance.now();
        await requester.request(i, 'ping');
        times.push(performance.now() - t0);
      }
      await requester.stop();
      await responder.stop();
      await pub.close();
      await conn.queueDelete({ queue });
      await conn.queueDelete({ queue: `${queue}.dead-letter` });
      await conn.exchangeDelete({ exchange });
      await conn.exchangeDelete({ exchange: `${exchange}.dead-letter` });

      const rows: BenchRow[] = [];
      if (a1)
        rows.push(
          ratioRow({
            id: 'A1',
            case: `confirmed publish, ${N.toLocaleString('en-US')} × 256 B JSON, ${WINDOW} outstanding`,
            unit: 'msg/s',
            ours: a1.ours,
            anchor: a1.raw,
            anchorName: 'rabbitmq-client Publisher.send (confirm, mandatory, persistent)',
            goal: ['≥', 0.95],
          }),
        );
      if (a2)
        rows.push(
          ratioRow({
            id: 'A2',
            case: `consume ${N.toLocaleString('en-US')} pre-filled, prefetch ${PREFETCH}`,
            unit: 'msg/s',
            ours: a2.ours,
            anchor: a2.raw,
            anchorName: 'raw basic.consume + JSON.parse + basic.ack',
            goal: ['≥', 0.9],
          }),
        );
      if (times.length > 0)
        rows.push({
          id: 'A3',
          case: 'request() round trip p50 (500 sequential, per-instance reply queue)',
          value: Number(median(times).toFixed(2)),
          unit: 'ms',
        });
      return rows;
    } finally {
      await conn.close().catch(() => undefined);
      await peer.stop();
    }
  },
};
