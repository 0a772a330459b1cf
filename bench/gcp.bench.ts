/**
 * Google Cloud benchmark, on pstest (started here; `PUBSUB_EMULATOR_HOST` replaces it):
 * - P4 publish throughput: `PubSubBroker.publish` (one layer of batching, cloudmom's: up to
 *   1,000 messages / 9 MiB per publish request, the client's own batching a pass-through) vs
 *   the raw client's `topic.publishMessage` with its default batching (100 messages, 1 MiB,
 *   10 ms) and the same attributes, N messages of a ~256-byte JSON body with at most 1,000
 *   outstanding. After a warm-up (3 runs each), 7 rounds alternate the two (ABBA order, GC
 *   before each run); the row gives the median of each and the median of the paired ratios
 *   (pairs run back to back, so their ratio is the least disturbed by other load on a 2-core
 *   machine).
 * - RPC: `request()` round trip through a responder's subscription and the requester's reply
 *   subscription, median of 30 sequential requests (two publishes and two streaming-pull
 *   deliveries each), next to the first request (which creates the reply subscription).
 */
import { PubSub } from '@google-cloud/pubsub';
import { PubSubBroker } from 'cloudmom/gcp';
import { startPstest } from '../test/emulators/gcp/pstest.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const N = 20_000;
const WINDOW = 1000;
const PROJECT = 'cloudmom-bench';
const body = { id: 0, text: 'x'.repeat(200), tags: ['a', 'b', 'c'] };

const gc = (globalThis as { gc?: () => void }).gc;

async function timed(publish: (i: number) => Promise<string>): Promise<number> {
  gc?.();
  const t0 = performance.now();
  for (let i = 0; i < N; i += WINDOW) {
    const batch: Promise<string>[] = [];
    for (let j = i; j < Math.min(N, i + WINDOW); j++) batch.push(publish(j));
    await Promise.all(batch);
  }
  return N / ((performance.now() - t0) / 1000);
}

async function raw(host: string, topic: string): Promise<number> {
  const client = new PubSub({ projectId: PROJECT, apiEndpoint: host });
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
  const broker = new PubSubBroker({ client, topic, projectId: PROJECT, logger: false });
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

export const suite: BenchSuite = {
  name: 'gcp (Pub/Sub on pstest)',
  async run(): Promise<BenchRow[]> {
    process.env.METADATA_SERVER_DETECTION = 'none'; // no GCE metadata probe off loopback
    const peer = await startPstest();
    try {
      const admin = new PubSub({ projectId: PROJECT, apiEndpoint: peer.endpoint });
      const topic = `bench-${Date.now()}`;
      await admin.createTopic(topic);
      for (let i = 0; i < 3; i++) {
        // warm-up (JIT: cloudmom's path is longer and takes a few runs to optimize)
        await raw(peer.endpoint, topic);
        await cloudmom(peer.endpoint, topic);
      }
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let round = 0; round < 7; round++) {
        if (round % 2) {
          ours.push(await cloudmom(peer.endpoint, topic));
          theirs.push(await raw(peer.endpoint, topic));
        } else {
          theirs.push(await raw(peer.endpoint, topic));
          ours.push(await cloudmom(peer.endpoint, topic));
        }
      }
      process.stderr.write(
        `gcp bench runs: cloudmom ${ours.map(Math.round).join(' ')}; raw ${theirs.map(Math.round).join(' ')}\n`,
      );
      await admin.topic(topic).delete();
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
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
      const value = Math.round(median(ours));
      const anchorValue = Math.round(median(theirs));
      // Pairs ran back to back, so their ratio is the least affected by drifting load.
      const ratio = Math.round(median(ours.map((o, i) => o / theirs[i]!)) * 100) / 100;
      return [
        {
          id: 'P4',
          case: `Pub/Sub publish via pstest, ${N.toLocaleString('en-US')} × ~256 B JSON, cloudmom's batching (≤ 1,000 msg per request) vs the client's (100 msg / 10 ms) (medians of 7 ABBA rounds)`,
          value,
          unit: 'msgs/s',
          anchor: '@google-cloud/pubsub topic.publishMessage',
          anchorValue,
          ratio,
          goal: '≥ 0.95',
          met: ratio >= 0.95,
        },
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
