/**
 * Profiling driver for the RabbitMQ publish and consume paths (bench rows A1, A2):
 * `node --conditions=source --cpu-prof --cpu-prof-dir=/tmp/prof/a bench/profile/amqp.ts <mode>`,
 * mode `ours`, `reuse` or `raw` (publish) or `consume-ours` / `consume-raw`. Publish: ROUNDS × N
 * confirmed publishes of a ~256-byte JSON body, 1,000 outstanding, as the bench does. Consume:
 * ROUNDS drains of N pre-filled messages, prefetch 50, as A2 does. Prints each round's rate. The node is started here unless `CLOUDMOM_AMQP_URL` names one
 * (RabbitMQ runs in its own process: the profile is the client's).
 */
import { Connection } from 'rabbitmq-client';
import { AmqpBroker } from '../../adapters/amqp/index.ts';
import { startRabbitmq } from '../../test/emulators/amqp/rabbitmq.ts';
import { BENCH_BODY, rawAmqpPublish } from '../anchors.ts';

const mode = process.argv[2] ?? 'ours';
const N = Number(process.env.N ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const body = BENCH_BODY;

const peer = await startRabbitmq();
const conn = new Connection({ url: peer.url, frameMax: 131072, noDelay: true });
conn.on('error', () => {});
const exchange = `prof-${Date.now()}`;
const queue = `${exchange}-q`;
const opts = { url: peer.url, exchange, queue, logger: false as const };
const setup = new AmqpBroker(opts);
await setup.start();
await setup.stop();

async function windowed(publish: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < N; i += 1000) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) batch.push(publish(j));
    await Promise.all(batch);
  }
}

const pub = conn.createPublisher({ confirm: true });
const rates: number[] = [];
// "reuse": one broker for every round (its connection and channel opened before the first)
const reused = mode === 'reuse' ? new AmqpBroker(opts) : undefined;
if (reused) {
  const t = performance.now();
  await reused.publish(body, 'bench');
  console.log(
    'first publish of a fresh broker (connect, channel, declare, confirm)',
    Math.round(performance.now() - t),
    'ms',
  );
}
/** With VERBOSE: ms from t0 to the consumer set up (t1), and from there to now. */
function timings(t0: number, t1: number): void {
  if (!process.env.VERBOSE) return;
  const ms = (a: number, b: number) => (b - a).toFixed(1);
  console.log('start', ms(t0, t1), 'ms; drain', ms(t1, performance.now()), 'ms');
}

async function consume(ours: boolean): Promise<void> {
  let n = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  if (ours) {
    const b = new AmqpBroker({ ...opts, connection: conn, concurrency: 50 });
    b.add('bench', () => {
      if (++n === N) done();
    });
    const t0 = performance.now();
    await b.start();
    const t1 = performance.now();
    await all;
    timings(t0, t1);
    await b.stop();
    return;
  }
  const t0 = performance.now();
  const ch = await conn.acquire();
  await ch.basicQos({ prefetchCount: 50 });
  await ch.basicConsume({ queue }, (m) => {
    JSON.parse(typeof m.body === 'string' ? m.body : JSON.stringify(m.body));
    ch.basicAck({ deliveryTag: m.deliveryTag });
    if (++n === N) done();
  });
  const t1 = performance.now();
  await all;
  timings(t0, t1);
  await ch.close();
}

for (let r = 0; r < ROUNDS; r++) {
  if (mode.startsWith('consume')) {
    await conn.queuePurge({ queue });
    await windowed(rawAmqpPublish(pub, exchange));
    const t0 = performance.now();
    await consume(mode === 'consume-ours');
    rates.push(Math.round(N / ((performance.now() - t0) / 1000)));
    continue;
  }
  const b = mode === 'ours' ? new AmqpBroker(opts) : reused;
  const t0 = performance.now();
  if (b) await windowed((i) => b.publish({ ...body, id: i }, 'bench'));
  else await windowed(rawAmqpPublish(pub, exchange));
  rates.push(Math.round(N / ((performance.now() - t0) / 1000)));
  if (b !== reused) await b?.stop();
  await conn.queuePurge({ queue });
}
console.log(mode, 'rounds', rates.join(' '));
await reused?.stop();
await pub.close();
await conn.queueDelete({ queue });
await conn.queueDelete({ queue: `${queue}.dead-letter` });
await conn.exchangeDelete({ exchange });
await conn.exchangeDelete({ exchange: `${exchange}.dead-letter` });
await conn.close();
await peer.stop();
