/**
 * Profiling driver for the Kafka consume path (bench row K2):
 * `node --conditions=source --cpu-prof --cpu-prof-dir=/tmp/prof/k bench/profile/kafka.ts <ours|raw|produce|peer> [keys]`.
 * Produces N records (`keys` record keys, default 100; 0: keyless) to a fresh 3-partition
 * topic, then consumes them ROUNDS times from a fresh group's join, as the bench does, and
 * prints each round's rate (`produce` only produces and prints the topic; `TOPIC=<it>` then
 * consumes it without producing, so the profile holds the consume path alone). The peer is started here unless `CLOUDMOM_KAFKA_BROKERS` names one
 * (`peer` mode starts one, prints its address and keeps it up until interrupted).
 * With `--expose-gc` a full GC runs before each round, as in the bench; `KEEP=1` keeps the
 * first round's broker (or raw consumer) referenced — see `keep` below.
 */
import { randomUUID } from 'node:crypto';
import { Admin, Consumer, type Message } from '@platformatic/kafka';
import { KafkaBroker } from '../../adapters/kafka/index.ts';
import { startKafka } from '../../test/emulators/kafka/kafka.ts';

const mode = process.argv[2] ?? 'ours';
/** Per round: ms from start to the first record (the join), and from it to the N-th. */
const phases: [number, number][] = [];
let first = 0;
/** Per round: event-loop utilization from the first record to the N-th (1: never idle). */
const elus: number[] = [];
let elu0 = performance.eventLoopUtilization();
const keys = Number(process.argv[3] ?? 100);
const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 8);
const GROUP = { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 6000 };
const body = { id: 0, text: 'x'.repeat(200), tags: ['a', 'b', 'c'] };

const peer = await startKafka();
if (mode === 'peer') {
  console.log(peer.endpoint);
  await new Promise<void>((r) => process.once('SIGINT', r));
  await peer.stop();
  process.exit(0);
}
const brokers = peer.endpoint.split(',');
const admin = new Admin({ clientId: 'prof-admin', bootstrapBrokers: brokers });
// TOPIC: consume that topic (left by an earlier `produce` run) instead of producing here
const topic = process.env.TOPIC ?? `prof-${Date.now()}`;
if (!process.env.TOPIC) {
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
  await new Promise((r) => setTimeout(r, 500));
  const producer = new KafkaBroker({ brokers, topic, logger: false });
  for (let i = 0; i < N; i += 1000)
    await Promise.all(
      Array.from({ length: Math.min(1000, N - i) }, (_, j) =>
        producer.publish({ ...body, id: i + j }, 'bench', {
          ...(keys > 0 ? { groupKey: `key-${(i + j) % keys}` } : {}),
        }),
      ),
    );
  await producer.stop();
}
if (mode === 'produce') {
  console.log(topic);
  await admin.close();
  process.exit(0);
}

async function ours(): Promise<number> {
  const broker = new KafkaBroker({
    brokers,
    topic,
    orderKeyless: process.env.ORDER_KEYLESS !== 'false',
    groupId: `prof-${randomUUID()}`,
    logger: false,
    concurrency: 50,
    group: GROUP,
  });
  let n = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => {
    done = r;
  });
  broker.add('bench', () => {
    if (n++ === 0) {
      first = performance.now();
      elu0 = performance.eventLoopUtilization();
    }
    if (n === N) done();
  });
  const consumer = broker.client.consumer;
  let commits = 0;
  let fetches = 0;
  const { commit, fetch } = consumer;
  consumer.commit = ((...a: Parameters<typeof commit>) => {
    commits++;
    return commit.apply(consumer, a);
  }) as typeof commit;
  consumer.fetch = ((...a: Parameters<typeof fetch>) => {
    fetches++;
    return fetch.apply(consumer, a);
  }) as typeof fetch;
  const t0 = performance.now();
  await broker.start();
  await all;
  const rate = N / ((performance.now() - t0) / 1000);
  phases.push([first - t0, performance.now() - first]);
  elus.push(performance.eventLoopUtilization(elu0).utilization);
  await broker.stop();
  if (keep && !kept.has('ours')) kept.set('ours', broker);
  if (process.env.COUNT) console.log({ commits, fetches });
  return rate;
}

async function raw(): Promise<number> {
  const consumer = new Consumer({
    clientId: 'prof-raw',
    bootstrapBrokers: brokers,
    groupId: `prof-raw-${randomUUID()}`,
    sessionTimeout: GROUP.sessionTimeoutMs,
    heartbeatInterval: GROUP.heartbeatIntervalMs,
    rebalanceTimeout: GROUP.rebalanceTimeoutMs,
    maxWaitTime: 500,
  });
  let fetches = 0;
  const { fetch } = consumer;
  consumer.fetch = ((...a: Parameters<typeof fetch>) => {
    fetches++;
    return fetch.apply(consumer, a);
  }) as typeof fetch;
  const t0 = performance.now();
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
  let n = 0;
  await new Promise<void>((resolve) => {
    stream.on('data', (m: Message) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of m.headerEntries) headers[k.toString()] = v.toString();
      JSON.parse(m.value.toString());
      if (n++ === 0) {
        first = performance.now();
        elu0 = performance.eventLoopUtilization();
      }
      if (n % 1000 === 0) void m.commit();
      if (n === N) resolve();
    });
  });
  const rate = N / ((performance.now() - t0) / 1000);
  phases.push([first - t0, performance.now() - first]);
  elus.push(performance.eventLoopUtilization(elu0).utilization);
  await stream.close();
  await consumer.close(true);
  if (keep && !kept.has('raw')) kept.set('raw', consumer);
  if (process.env.COUNT) console.log({ fetches });
  return rate;
}

/**
 * KEEP=1: the first round's broker (or raw consumer) stays referenced, as in a process that
 * keeps one. Without it, with --expose-gc (a full GC before each round, as the bench does),
 * the objects (and hidden classes) the optimized code was made for are collected with the
 * dropped client and that code thrown away: each round starts cold (V8's "weak objects" deopts;
 * `--trace-deopt` shows them).
 */
const keep = process.env.KEEP === '1';
const kept = new Map<string, unknown>();
const run = mode === 'raw' ? raw : ours;
const rates: number[] = [];
// CPU of this process per record (user + system, join and close included): steadier than the
// rate on a loaded machine
const cpu: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  (globalThis as { gc?: () => void }).gc?.(); // as the bench does (with --expose-gc)
  const c0 = process.cpuUsage();
  rates.push(Math.round(await run()));
  const c = process.cpuUsage(c0);
  cpu.push(Math.round(((c.user + c.system) / N) * 100) / 100);
}
const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(mode, `keys=${keys}`, 'rounds', rates.join(' '), 'median', mid(rates));
console.log(mode, 'cpu µs/record', cpu.join(' '), 'median', mid(cpu));
const ms = (xs: number[]) => Math.round(mid(xs)!);
console.log(mode, 'event-loop utilization first to last', elus.map((u) => u.toFixed(2)).join(' '));
console.log(
  mode,
  'ms to the first record',
  ms(phases.map((p) => p[0])),
  'then to the last',
  ms(phases.map((p) => p[1])),
);
if (!process.env.TOPIC) await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
await admin.close();
await peer.stop();
