/**
 * Profiling driver for the RabbitMQ publish path (bench row A1):
 * `node --conditions=source --cpu-prof --cpu-prof-dir=/tmp/prof/a bench/profile/amqp.ts <ours|raw>`.
 * ROUNDS × N confirmed publishes of a ~256-byte JSON body, 1,000 outstanding, as the bench
 * does; prints each round's rate. The node is started here unless `CLOUDMOM_AMQP_URL` names one
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
for (let r = 0; r < ROUNDS; r++) {
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
