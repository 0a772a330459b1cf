/**
 * Kafka benchmark, on the test peer (Kafka 4.4 KRaft, started here; `CLOUDMOM_KAFKA_BROKERS`
 * replaces it), against `@platformatic/kafka` used directly:
 * - K1 produce throughput: `KafkaBroker.publish` (the core batches up to 500 records per
 *   produce call) vs `Producer.send` with the same batching (500 records a call), the same
 *   headers (target, content_type, message_id), idempotent, acks=all; N records of a ~256-byte
 *   JSON body, 1,000 outstanding.
 * - K2 consume throughput: `KafkaBroker.start()` handling 80,000 pre-produced records
 *   (`BENCH_KAFKA_CONSUME_RECORDS`: rounds of ~0.8 s, which one slow group join moves less) with
 *   a no-op handler and watermark commits, vs a raw `Consumer.consume()` loop with the same fetch
 *   sizes doing the same work per record (headers decoded, JSON value parsed, the handler
 *   called) with a commit every 1,000; both from a fresh group's join to the last record. Rows: records keyed (100 keys, the
 *   broker orders per key), and keyless with `orderKeyless: false`; and, for information,
 *   keyless in partition order (the default: one record at a time per partition).
 * After a warm-up, `BENCH_KAFKA_ROUNDS` (11) interleaved rounds (bench/rounds.ts); rows give medians and the median of the
 * paired ratios. Each side keeps its first client referenced through the rounds (`keepFirst`).
 */
import { randomUUID } from 'node:crypto';
import { Admin, Consumer, ProduceAcks, Producer } from '@platformatic/kafka';
import { KafkaBroker } from 'cloudmom/kafka';
import { startKafka } from '../test/emulators/kafka/kafka.ts';
import { BENCH_BODY, rawKafkaConsume, rawKafkaRecords } from './anchors.ts';
import { interleave, keepFirst, ratioRow } from './rounds.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const N = 20_000;
/**
 * Records a consume round reads (a multiple of N, produced N at a time before the rounds): a
 * round of 20,000 was ~0.2 s, so one slow group join moved its ratio by a third.
 */
const CONSUME_N = Math.ceil(Number(process.env.BENCH_KAFKA_CONSUME_RECORDS ?? 80_000) / N) * N;
const WINDOW = 1000;
const BATCH = 500;
const ROUNDS = Number(process.env.BENCH_KAFKA_ROUNDS ?? 11);
const WARMUP = 3;
const body = BENCH_BODY;
const gc = (globalThis as { gc?: () => void }).gc;
// BENCH_ONLY=K1 (or "K1,K2"...) runs only those cases (K2 stands for K2, K2b, K2c); unset runs all.
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim().toUpperCase());
const wanted = (id: string) => !only || only.includes(id);
const GROUP = { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 6000 };

async function produceRaw(brokers: string[], topic: string): Promise<number> {
  const producer = keepFirst(
    'K1 raw',
    new Producer({
      clientId: 'bench-raw',
      bootstrapBrokers: brokers,
      idempotent: true,
      acks: ProduceAcks.ALL,
    }),
  );
  try {
    gc?.();
    const t0 = performance.now();
    for (let i = 0; i < N; i += WINDOW) {
      const sends: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(N, i + WINDOW); j += BATCH) {
        const messages = rawKafkaRecords(topic, j, Math.min(N, j + BATCH, i + WINDOW));
        sends.push(producer.send({ messages }));
      }
      await Promise.all(sends);
    }
    return N / ((performance.now() - t0) / 1000);
  } finally {
    await producer.close();
  }
}

async function produceCloudmom(brokers: string[], topic: string, keys = 0): Promise<number> {
  const broker = keepFirst(`K1 ours ${keys}`, new KafkaBroker({ brokers, topic, logger: false }));
  try {
    gc?.();
    const t0 = performance.now();
    for (let i = 0; i < N; i += WINDOW) {
      const batch: Promise<string>[] = [];
      for (let j = i; j < Math.min(N, i + WINDOW); j++)
        batch.push(
          broker.publish(
            { ...body, id: j },
            'bench',
            keys > 0 ? { groupKey: `key-${j % keys}` } : {},
          ),
        );
      await Promise.all(batch);
    }
    return N / ((performance.now() - t0) / 1000);
  } finally {
    await broker.stop();
  }
}

async function consumeRaw(brokers: string[], topic: string): Promise<number> {
  const consumer = keepFirst(
    'K2 raw',
    new Consumer({
      clientId: 'bench-raw',
      bootstrapBrokers: brokers,
      groupId: `bench-raw-${randomUUID()}`,
      sessionTimeout: GROUP.sessionTimeoutMs,
      heartbeatInterval: GROUP.heartbeatIntervalMs,
      rebalanceTimeout: GROUP.rebalanceTimeoutMs,
      maxWaitTime: 500,
      // the fetch sizes KafkaBroker sets (adapters/kafka/broker.ts): with the client's defaults
      // the raw loop stays at ~120k records/s however many there are, ours ~2.3x that
      maxBytes: 8 * 1024 * 1024,
      maxBytesPerPartition: 256 * 1024,
      highWaterMark: 256,
    }),
  );
  try {
    gc?.();
    const t0 = performance.now();
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const loop = rawKafkaConsume(CONSUME_N);
    stream.on('data', loop.onRecord);
    await loop.done;
    const rate = CONSUME_N / ((performance.now() - t0) / 1000);
    await stream.close();
    return rate;
  } finally {
    await consumer.close(true);
  }
}

async function consumeCloudmom(
  brokers: string[],
  topic: string,
  orderKeyless = true,
): Promise<number> {
  const broker = keepFirst(
    `K2 ours ${orderKeyless}`,
    new KafkaBroker({
      brokers,
      topic,
      orderKeyless,
      groupId: `bench-cm-${randomUUID()}`,
      logger: false,
      concurrency: 50,
      group: GROUP,
    }),
  );
  let n = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => {
    done = r;
  });
  broker.add('bench', () => {
    n++;
    if (n === CONSUME_N) done();
  });
  try {
    gc?.();
    const t0 = performance.now();
    await broker.start();
    await all;
    return CONSUME_N / ((performance.now() - t0) / 1000);
  } finally {
    await broker.stop();
  }
}

/** cloudmom vs the raw client: interleaved rounds after a warm-up (bench/rounds.ts). */
function compare(
  ours: () => Promise<number>,
  theirs: () => Promise<number>,
  log: string,
): Promise<Record<'ours' | 'raw', number[]>> {
  // warm-up: JIT (cloudmom's path is longer and takes a few runs to optimize)
  return interleave({ ours, raw: theirs }, ROUNDS, { warmup: WARMUP, log });
}

export const suite: BenchSuite = {
  name: 'kafka (Kafka 4.4 KRaft)',
  async run(): Promise<BenchRow[]> {
    const peer = await startKafka();
    const brokers = peer.endpoint.split(',');
    const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: brokers });
    const topic = `bench-${Date.now()}`;
    const source = `${topic}-source`;
    const keyed = `${topic}-keyed`;
    try {
      await admin.createTopics({ topics: [topic, source, keyed], partitions: 3, replicas: 1 });
      await new Promise((r) => setTimeout(r, 500));
      const rows: BenchRow[] = [];
      if (wanted('K1')) {
        const produce = await compare(
          () => produceCloudmom(brokers, topic),
          () => produceRaw(brokers, topic),
          'kafka produce',
        );
        rows.push(
          ratioRow({
            id: 'K1',
            case: `produce, ${N.toLocaleString('en-US')} × ~256 B JSON, 500 records a call, idempotent acks=all`,
            unit: 'msg/s',
            ours: produce.ours,
            anchor: produce.raw,
            anchorName: '@platformatic/kafka Producer.send, same batching',
            goal: ['≥', 0.95],
          }),
        );
      }
      if (wanted('K2')) {
        for (let i = 0; i < CONSUME_N; i += N) {
          await produceCloudmom(brokers, keyed, 100); // records to consume, 100 keys
          await produceCloudmom(brokers, source); // records without a key
        }
        const consumeKeyed = await compare(
          () => consumeCloudmom(brokers, keyed),
          () => consumeRaw(brokers, keyed),
          'kafka consume (keyed)',
        );
        const consume = await compare(
          () => consumeCloudmom(brokers, source, false),
          () => consumeRaw(brokers, source),
          'kafka consume (keyless, unordered)',
        );
        const ordered = await compare(
          () => consumeCloudmom(brokers, source, true),
          () => consumeRaw(brokers, source),
          'kafka consume (keyless, partition order)',
        );
        rows.push(
          ratioRow({
            id: 'K2',
            case: `consume ${CONSUME_N.toLocaleString('en-US')} keyed records (100 keys, 3 partitions) from a fresh group's join; concurrency 50, order per key, watermark commits`,
            unit: 'msg/s',
            ours: consumeKeyed.ours,
            anchor: consumeKeyed.raw,
            anchorName:
              '@platformatic/kafka consume() loop, same work per record, commit every 1,000',
            goal: ['≥', 0.9],
          }),
          ratioRow({
            id: 'K2b',
            case: `consume ${CONSUME_N.toLocaleString('en-US')} keyless records, orderKeyless: false`,
            unit: 'msg/s',
            ours: consume.ours,
            anchor: consume.raw,
            anchorName: 'the same raw loop',
            goal: ['≥', 0.9],
          }),
          ratioRow({
            id: 'K2c',
            case: `consume ${CONSUME_N.toLocaleString('en-US')} keyless records in partition order (default: one at a time per partition)`,
            unit: 'msg/s',
            ours: ordered.ours,
            anchor: ordered.raw,
            anchorName: 'the same raw loop',
          }),
        );
      }
      return rows;
    } finally {
      await admin.deleteTopics({ topics: [topic, source, keyed] }).catch(() => undefined);
      await admin.close();
      await peer.stop();
    }
  },
};
