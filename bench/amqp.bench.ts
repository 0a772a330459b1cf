/**
 * RabbitMQ benchmark, on this run's own node (test/emulators/amqp; `CLOUDMOM_AMQP_URL`
 * replaces it), quorum queue, ~256-byte JSON bodies:
 * - A1 confirmed publish: `AmqpBroker.publish` vs the raw client's confirmed, mandatory,
 *   persistent `Publisher.send` with the same properties, 1,000 outstanding (goal ≥ 0.95);
 * - A2 consume: `AmqpBroker.start()` handling a pre-filled queue vs a raw `basic.consume`
 *   loop with the same prefetch (50) acking each message (goal ≥ 0.9);
 * - A3 `request()` round trip p50 (sequential).
 * Warm-up, then alternating rounds (ABBA); medians of each and of the paired ratios.
 */
import { AmqpBroker } from 'cloudmom/amqp';
import { Connection } from 'rabbitmq-client';
import { startRabbitmq } from '../test/emulators/amqp/rabbitmq.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const N = 10_000;
const WINDOW = 1000;
const PREFETCH = 50;
const body = { id: 0, text: 'x'.repeat(200), tags: ['a', 'b', 'c'] };
const gc = (globalThis as { gc?: () => void }).gc;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

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
      const rawPublish = (i: number) =>
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
          Buffer.from(JSON.stringify({ ...body, id: i })),
        );
      const purge = () => conn.queuePurge({ queue });

      // A1
      const ours = async () => {
        const b = new AmqpBroker(opts);
        try {
          return await rate(N, () => windowed((i) => b.publish({ ...body, id: i }, 'bench')));
        } finally {
          await b.stop();
          await purge();
        }
      };
      const theirs = async () => {
        const r = await rate(N, () => windowed(rawPublish));
        await purge();
        return r;
      };
      for (let i = 0; i < 2; i++) {
        await theirs();
        await ours();
      }
      const a1 = { ours: [] as number[], theirs: [] as number[], ratios: [] as number[] };
      for (let round = 0; round < 6; round++) {
        let o: number;
        let t: number;
        if (round % 2) {
          o = await ours();
          t = await theirs();
        } else {
          t = await theirs();
          o = await ours();
        }
        a1.ours.push(o);
        a1.theirs.push(t);
        a1.ratios.push(o / t);
      }

      // A2
      const fill = async () => {
        await purge();
        await windowed(rawPublish);
      };
      const consumeOurs = async () => {
        await fill();
        const b = new AmqpBroker(opts);
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
        const ch = await conn.acquire();
        let n = 0;
        let done!: () => void;
        const all = new Promise<void>((r) => {
          done = r;
        });
        const r = await rate(N, async () => {
          await ch.basicQos({ prefetchCount: PREFETCH });
          await ch.basicConsume({ queue }, (m) => {
            JSON.parse(typeof m.body === 'string' ? m.body : JSON.stringify(m.body));
            ch.basicAck({ deliveryTag: m.deliveryTag });
            if (++n === N) done();
          });
          await all;
        });
        await ch.close();
        return r;
      };
      await consumeRaw();
      await consumeOurs();
      const a2 = { ours: [] as number[], theirs: [] as number[], ratios: [] as number[] };
      for (let round = 0; round < 4; round++) {
        let o: number;
        let t: number;
        if (round % 2) {
          o = await consumeOurs();
          t = await consumeRaw();
        } else {
          t = await consumeRaw();
          o = await consumeOurs();
        }
        a2.ours.push(o);
        a2.theirs.push(t);
        a2.ratios.push(o / t);
      }

      // A3
      await purge();
      const responder = new AmqpBroker(opts);
      responder.add('ping', () => 'pong');
      await responder.start();
      const requester = new AmqpBroker({ ...opts, queue: undefined });
      for (let i = 0; i < 50; i++) await requester.request(i, 'ping');
      const times: number[] = [];
      for (let i = 0; i < 500; i++) {
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

      const r1 = median(a1.ratios);
      const r2 = median(a2.ratios);
      return [
        {
          id: 'A1',
          case: `confirmed publish, ${N.toLocaleString('en-US')} × 256 B JSON, ${WINDOW} outstanding`,
          value: Math.round(median(a1.ours)),
          unit: 'msg/s',
          anchor: 'rabbitmq-client Publisher.send (confirm, mandatory, persistent)',
          anchorValue: Math.round(median(a1.theirs)),
          ratio: r1,
          goal: '≥ 0.95',
          met: r1 >= 0.95,
        },
        {
          id: 'A2',
          case: `consume ${N.toLocaleString('en-US')} pre-filled, prefetch ${PREFETCH}`,
          value: Math.round(median(a2.ours)),
          unit: 'msg/s',
          anchor: 'raw basic.consume + JSON.parse + basic.ack',
          anchorValue: Math.round(median(a2.theirs)),
          ratio: r2,
          goal: '≥ 0.9',
          met: r2 >= 0.9,
        },
        {
          id: 'A3',
          case: 'request() round trip p50 (500 sequential, per-instance reply queue)',
          value: Number(median(times).toFixed(2)),
          unit: 'ms',
        },
      ];
    } finally {
      await conn.close().catch(() => undefined);
      await peer.stop();
    }
  },
};
