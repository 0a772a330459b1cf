/**
 * Google Cloud benchmark, on pstest (started here; `PUBSUB_EMULATOR_HOST` replaces it):
 * - P4 publish throughput: `PubSubBroker.publish` (one layer of batching, cloudmom's: up to
 *   1,000 messages / 9 MiB per Publish request, sent through the client's v1.PublisherClient) vs
 *   the raw client's `topic.publishMessage` with its default batching (100 messages, 1 MiB,
 *   10 ms) and the same attributes, N messages of a ~256-byte JSON body with at most 1,000
 *   outstanding. Interleaved rounds after a warm-up (bench/rounds.ts: medians, the median of
 *   the paired ratios and its spread).
 * - P8 consume: `PubSubBroker.start()` draining a subscription filled beforehand vs the raw
 *   client's `subscription.on('message')` + `ack()` with the same flow control (100).
 * - RPC: `request()` round trip through a responder's subscription and the requester's reply
 *   subscription, median of 30 sequential requests (two publishes and two streaming-pull
 *   deliveries each), next to the first request (which creates the reply subscription).
 * Each side keeps its first client or broker referenced through the rounds (bench/rounds.ts
 * `keepFirst`).
 */
import { PubSub } from '@google-cloud/pubsub';
import { PubSubBroker } from 'cloudmom/gcp';
import { startPstest } from '../test/emulators/gcp/pstest.ts';
import { interleave, keepFirst, ratioRow, since } from './rounds.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const N = 20_000;
const WINDOW = 1000;
const ROUNDS = Number(process.env.BENCH_GCP_ROUNDS ?? 7);
const CONSUME_N = Number(process.env.BENCH_GCP_CONSUME_MESSAGES ?? 1000);
const CONSUME_ROUNDS = Number(process.env.BENCH_GCP_CONSUME_ROUNDS ?? 3);
const CONSUME_CONCURRENCY = 100;
const PROJECT = 'cloudmom-bench';
const body = { id: 0, text: 'x'.repeat(200), tags: ['a', 'b', 'c'] };

async function timed(publish: (i: number) => Promise<string>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < N; i += WINDOW) {
    const batch: Promise<string>[] = [];
    for (let j = i; j < Math.min(N, i + WINDOW); j++) batch.push(publish(j));
    await Promise.all(batch);
  }
  return N / ((performance.now() - t0) / 1000);
}

async function raw(host: string, topic: string): Promise<number> {
  const client = keepFirst('publish raw', new PubSub({ projectId: PROJECT, apiEndpoint: host }));
  const t = client.topic(topic);
  try {
    return await timed((i) =>
      t.publishMessage({
        data: Buffer.from(JSON.stringify({ ...body, id: i })),
        attributes: { target: 'bench', content_type: 'application/json' },
      }),
    );
  } finally {
    await client.close();
  }
}

async function cloudmom(host: string, topic: string): Promise<number> {
  const client = new PubSub({ projectId: PROJECT, apiEndpoint: host });
  const broker = keepFirst(
    'publish ours',
    new PubSubBroker({ client, topic, projectId: PROJECT, logger: false }),
  );
  try {
    return await timed((i) => broker.publish({ ...body, id: i }, 'bench'));
  } finally {
    await broker.stop();
    await client.close();
  }
}

/** Median and first of 30 sequential request() round trips (ms). */
async function roundTrips(host: string, topic: string, subscription: string, replyTopic: string) {
  const client = new PubSub({ projectId: PROJECT, apiEndpoint: host });
  const options = { client, topic, projectId: PROJECT, replyTopic, logger: false as const };
  const responder = new PubSubBroker({
    ...options,
    subscription,
    subscriberOptions: { batching: { maxMilliseconds: 1 } },
  });
  const requester = new PubSubBroker({
    ...options,
    subscriberOptions: { batching: { maxMilliseconds: 1 } },
  });
  responder.add('echo', (_p, b: unknown) => b);
  try {
    await responder.start();
    const times: number[] = [];
    for (let i = 0; i < 31; i++) {
      const t0 = performance.now();
      await requester.request({ i }, 'echo', { timeoutMs: 10_000 });
      times.push(performance.now() - t0);
    }
    const [first, ...rest] = times;
    rest.sort((a, b) => a - b);
    return { first: first!, median: rest[rest.length >> 1]! };
  } finally {
    await requester.stop();
    await responder.stop();
    await client.close();
  }
}

/** A subscription on a fresh topic holding CONSUME_N messages (filled outside the timing). */
async function filled(admin: PubSub, name: string): Promise<string> {
  const [topic] = await admin.createTopic(name);
  await topic.createSubscription(`${name}-sub`, { ackDeadlineSeconds: 60 });
  const t = admin.topic(name, { batching: { maxMessages: 500, maxMilliseconds: 5 } });
  for (let i = 0; i < CONSUME_N; i += WINDOW)
    await Promise.all(
      Array.from({ length: Math.min(WINDOW, CONSUME_N - i) }, (_, j) =>
        t.publishMessage({
          data: Buffer.from(JSON.stringify({ ...body, id: i + j })),
          attributes: { target: 'bench', content_type: 'application/json' },
        }),
      ),
    );
  return `${name}-sub`;
}

/** Drains a filled subscription with PubSubBroker.start(): messages per second. */
async function cloudmomConsume(host: string, admin: PubSub, name: string): Promise<number> {
  const subscription = await filled(admin, name);
  const client = new PubSub({ projectId: PROJECT, apiEndpoint: host });
  const broker = keepFirst(
    'consume ours',
    new PubSubBroker({
      client,
      topic: name,
      subscription,
      projectId: PROJECT,
      logger: false,
      concurrency: CONSUME_CONCURRENCY,
    }),
  );
  let n = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  broker.add('bench', (_p, b: { id: number }) => {
    sink += b.id;
    if (++n === CONSUME_N) done();
  });
  const t0 = performance.now();
  await broker.start();
  await all;
  const rate = CONSUME_N / since(t0);
  await broker.stop();
  await client.close();
  await admin.subscription(subscription).delete();
  await admin.topic(name).delete();
  return rate;
}

/** The same with the raw client: subscription.on('message'), same flow control, ack each. */
async function rawConsume(host: string, admin: PubSub, name: string): Promise<number> {
  const subscription = await filled(admin, name);
  const client = keepFirst('consume raw', new PubSub({ projectId: PROJECT, apiEndpoint: host }));
  const sub = client.subscription(subscription, {
    flowControl: { maxMessages: CONSUME_CONCURRENCY, allowExcessMessages: false },
  });
  let n = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  const t0 = performance.now();
  sub.on('message', (m: { data: Buffer; attributes: Record<string, string>; ack(): void }) => {
    if (m.attributes.target === 'bench') sink += JSON.parse(m.data.toString('utf8')).id;
    m.ack();
    if (++n === CONSUME_N) done();
  });
  sub.on('error', () => {});
  await all;
  const rate = CONSUME_N / since(t0);
  await sub.close();
  await client.close();
  await admin.subscription(subscription).delete();
  await admin.topic(name).delete();
  return rate;
}

let sink = 0;

export const suite: BenchSuite = {
  name: 'gcp (Pub/Sub on pstest)',
  async run(): Promise<BenchRow[]> {
    process.env.METADATA_SERVER_DETECTION = 'none'; // no GCE metadata probe off loopback
    const peer = await startPstest();
    try {
      const admin = new PubSub({ projectId: PROJECT, apiEndpoint: peer.endpoint });
      const topic = `bench-${Date.now()}`;
      await admin.createTopic(topic);
      const pub = await interleave(
        {
          ours: () => cloudmom(peer.endpoint, topic),
          raw: () => raw(peer.endpoint, topic),
        },
        ROUNDS,
        // JIT: cloudmom's path is longer and takes a few runs to optimize
        { warmup: 2, log: 'P4 Pub/Sub publish msg/s' },
      );
      await admin.topic(topic).delete();
      let k = 0;
      const consume = await interleave(
        {
          ours: () => cloudmomConsume(peer.endpoint, admin, `${topic}-c${k++}`),
          raw: () => rawConsume(peer.endpoint, admin, `${topic}-c${k++}`),
        },
        CONSUME_ROUNDS,
        { warmup: 1, log: 'Pub/Sub consume msg/s' },
      );
      if (sink === 0) throw new Error('consume bench: handlers did not run');
      const [rpcTopic] = await admin.createTopic(`${topic}-rpc`);
      const [replyTopic] = await admin.createTopic(`${topic}-replies`);
      await rpcTopic.createSubscription(`${topic}-rpc-sub`);
      const rpc = await roundTrips(
        peer.endpoint,
        rpcTopic.name,
        `${topic}-rpc-sub`,
        replyTopic.name,
      );
      await admin.subscription(`${topic}-rpc-sub`).delete();
      await Promise.all([rpcTopic.delete(), replyTopic.delete()]);
      await admin.close();
      return [
        ratioRow({
          id: 'P4',
          case: `Pub/Sub publish via pstest, ${N.toLocaleString('en-US')} × ~256 B JSON, ≤ ${WINDOW} outstanding, cloudmom's batching vs the client's (100 msg / 10 ms)`,
          unit: 'msg/s',
          ours: pub.ours,
          anchor: pub.raw,
          anchorName: '@google-cloud/pubsub topic.publishMessage',
          goal: ['≥', 0.95],
        }),
        ratioRow({
          id: 'P8',
          case: `Pub/Sub consume via pstest: drain ${CONSUME_N.toLocaleString('en-US')} × ~256 B JSON, concurrency ${CONSUME_CONCURRENCY}`,
          unit: 'msg/s',
          ours: consume.ours,
          anchor: consume.raw,
          anchorName: "raw subscription.on('message') + ack, same flow control",
          goal: ['≥', 0.9],
        }),
        {
          id: 'RPC',
          case: 'request() round trip over Pub/Sub on pstest, median of 30 (per-instance reply subscription)',
          value: Math.round(rpc.median * 10) / 10,
          unit: 'ms',
          anchor: 'first request (creates the reply subscription)',
          anchorValue: Math.round(rpc.first * 10) / 10,
        },
      ];
    } finally {
      await peer.stop();
    }
  },
};
