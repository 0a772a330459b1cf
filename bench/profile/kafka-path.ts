/**
 * Profiling driver for cloudmom's own share of the Kafka consume path (bench rows K2, K2b,
 * K2c), without a peer: `node --conditions=source [--cpu-prof] bench/profile/kafka-path.ts
 * <ours|raw> [keys]`. A stand-in for `@platformatic/kafka`'s consumer hands N records made
 * beforehand (`keys` record keys, default 100; 0: keyless; the headers and ~256-byte JSON
 * body cloudmom publishes) to `KafkaBroker.start()` as its stream does: 'data' events, a
 * fetch's worth a turn, honouring pause(). `raw` runs the bench's raw loop over the same
 * records (headers decoded, JSON parsed, a handler called, a commit every 1,000). Both print
 * CPU µs per record over ROUNDS rounds: the difference is what cloudmom adds per record on the
 * same client (the client's own fetch and parse cost, the same for both, is not in it).
 * `ORDER_KEYLESS=false`: keyless records unordered (K2b). With `--expose-gc` (a full GC
 * before each round, as the bench does) `KEEP=1` keeps the first broker referenced: without
 * one alive, the objects (and hidden classes) the optimized code was made for are collected
 * and that code thrown away, so every round starts cold (see bench/profile/kafka.ts).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { KafkaBroker } from '../../adapters/kafka/index.ts';
import { BENCH_BODY, rawKafkaConsume } from '../anchors.ts';

const mode = process.argv[2] ?? 'ours';
const keys = Number(process.argv[3] ?? 100);
const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 15);
/** Records a turn (about one 256 KiB fetch per partition of 3). */
const FETCH = 2000;
const TOPIC = 'path';

interface FakeMessage {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  leaderEpoch: number;
  key: Buffer | undefined;
  value: Buffer;
  headerEntries: [Buffer, Buffer][];
  commit(): Promise<void>;
}

function records(round: number): FakeMessage[] {
  const out: FakeMessage[] = [];
  const next = [0n, 0n, 0n];
  const h = (s: string) => Buffer.from(s);
  for (let i = 0; i < N; i++) {
    const key = keys > 0 ? `key-${i % keys}` : undefined;
    const partition = keys > 0 ? (i % keys) % 3 : i % 3;
    const offset = next[partition]!;
    next[partition] = offset + 1n;
    out.push({
      topic: TOPIC,
      partition,
      offset: offset + BigInt(round * N),
      timestamp: BigInt(Date.now()),
      leaderEpoch: 0,
      key: key === undefined ? undefined : h(key),
      value: h(JSON.stringify({ ...BENCH_BODY, id: i })),
      headerEntries: [
        [h('target'), h('bench')],
        [h('content_type'), h('application/json')],
        [h('message_id'), h(randomUUID())],
      ],
      commit: () => Promise.resolve(),
    });
  }
  return out;
}

/** The stream a consumer's consume() answers: 'data' a fetch's worth a turn while not paused. */
class FakeStream extends EventEmitter {
  #paused = false;
  #i = 0;
  #scheduled = false;
  readonly messages: FakeMessage[];
  constructor(messages: FakeMessage[]) {
    super();
    this.messages = messages;
    this.#schedule();
  }
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const end = Math.min(this.messages.length, this.#i + FETCH);
      while (this.#i < end && !this.#paused) this.emit('data', this.messages[this.#i++]);
      if (this.#i < this.messages.length && !this.#paused) this.#schedule();
    });
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    this.#paused = false;
    this.#schedule();
  }
  async close(): Promise<void> {
    this.#paused = true;
  }
}

/** The members of `Consumer` the broker's group source uses. */
class FakeConsumer extends EventEmitter {
  readonly groupId = 'path';
  readonly assignments = [{ topic: TOPIC, partitions: [0, 1, 2] }];
  commits = 0;
  messages: FakeMessage[];
  constructor(messages: FakeMessage[]) {
    super();
    this.messages = messages;
  }
  async consume(): Promise<FakeStream> {
    return new FakeStream(this.messages);
  }
  async commit(): Promise<void> {
    this.commits++;
  }
  async close(): Promise<void> {}
}

async function ours(messages: FakeMessage[]): Promise<void> {
  const consumer = new FakeConsumer(messages);
  const broker = new KafkaBroker({
    brokers: 'localhost:9092',
    topic: TOPIC,
    orderKeyless: process.env.ORDER_KEYLESS !== 'false',
    logger: false,
    concurrency: 50,
    consumer: consumer as unknown as import('@platformatic/kafka').Consumer,
  });
  let n = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => {
    done = r;
  });
  broker.add('bench', () => {
    if (++n === N) done();
  });
  await broker.start();
  await all;
  await broker.stop();
  consumer.messages = [];
  // KEEP=1: the first broker stays referenced, as in a process that keeps one (see the header)
  if (process.env.KEEP === '1' && kept.length === 0) kept.push(broker);
}
const kept: KafkaBroker[] = [];

async function raw(messages: FakeMessage[]): Promise<void> {
  const stream = new FakeStream(messages);
  const loop = rawKafkaConsume(N);
  stream.on('data', loop.onRecord);
  await loop.done;
}

const run = mode === 'raw' ? raw : ours;
const cpu: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const messages = records(r);
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  await run(messages);
  const c = process.cpuUsage(c0);
  cpu.push(Math.round(((c.user + c.system) / N) * 100) / 100);
}
const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(mode, `keys=${keys}`, 'cpu µs/record', cpu.join(' '), 'median', mid(cpu));
