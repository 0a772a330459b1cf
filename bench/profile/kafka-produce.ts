/**
 * Profiling driver for the Kafka produce path (bench row K1):
 * `node --conditions=source --cpu-prof --cpu-prof-dir=/tmp/prof/kp bench/profile/kafka-produce.ts <ours|raw|both>`.
 * ROUNDS × N records of a ~256-byte JSON body to a fresh 3-partition topic, 1,000 outstanding,
 * 500 records a produce call, idempotent, acks=all, as the bench does; prints each round's
 * rate. The peer is started here unless `CLOUDMOM_KAFKA_BROKERS` names one (Kafka runs in its
 * own JVM: the profile is the client's). With `--expose-gc` a full GC runs before each round,
 * as in the bench; `KEEP=1` keeps the first round's clients referenced.
 */
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka';
import { KafkaBroker } from '../../adapters/kafka/index.ts';
import { startKafka } from '../../test/emulators/kafka/kafka.ts';
import { BENCH_BODY, rawKafkaRecords } from '../anchors.ts';

const mode = process.argv[2] ?? 'ours';
const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 8);
const body = BENCH_BODY;

const peer = await startKafka();
const brokers = peer.endpoint.split(',');
const admin = new Admin({ clientId: 'prof-admin', bootstrapBrokers: brokers });
const topic = `prof-${Date.now()}`;
await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
await new Promise((r) => setTimeout(r, 500));

/**
 * KEEP=1: the first broker (and raw producer) stays referenced, as in a process that keeps one;
 * see bench/profile/kafka.ts (with --expose-gc each round otherwise starts with cold code).
 */
const keep = process.env.KEEP === '1';
const kept = new Map<string, unknown>();

// Each answers its rate; closing the client is not timed (as in the bench).
async function ours(): Promise<number> {
  const broker = new KafkaBroker({ brokers, topic, logger: false });
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000)
    await Promise.all(
      Array.from({ length: Math.min(1000, N - i) }, (_, j) =>
        broker.publish({ ...body, id: i + j }, 'bench'),
      ),
    );
  const rate = N / ((performance.now() - t0) / 1000);
  await broker.stop();
  if (keep && !kept.has('ours')) kept.set('ours', broker);
  return rate;
}

async function raw(): Promise<number> {
  const producer = new Producer({
    clientId: 'prof-raw',
    bootstrapBrokers: brokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
  });
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const sends: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j += 500) {
      const messages = rawKafkaRecords(topic, j, Math.min(N, j + 500, i + 1000));
      sends.push(producer.send({ messages }));
    }
    await Promise.all(sends);
  }
  const rate = N / ((performance.now() - t0) / 1000);
  await producer.close();
  if (keep && !kept.has('raw')) kept.set('raw', producer);
  return rate;
}

// "both": ours and raw alternating in this process (A B, B A, ...), each with its CPU per record
const runs = mode === 'both' ? { ours, raw } : mode === 'raw' ? { raw } : { ours };
const rates: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  const names = Object.keys(runs);
  for (const name of r % 2 ? names.reverse() : names) {
    (globalThis as { gc?: () => void }).gc?.(); // as the bench does (with --expose-gc)
    const c0 = process.cpuUsage();
    const rate = Math.round(await runs[name as keyof typeof runs]!());
    const c = process.cpuUsage(c0);
    rates[name]!.push(rate);
    cpu[name]!.push(Number(((c.user + c.system) / N).toFixed(1)));
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const name of Object.keys(rates))
  console.log(
    name,
    'rounds',
    rates[name]!.join(' '),
    'median',
    med(rates[name]!),
    '| CPU µs/record (this process)',
    cpu[name]!.join(' '),
  );
await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
await admin.close();
await peer.stop();
