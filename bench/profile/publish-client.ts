/**
 * Client CPU per published message, with the peer in another process (so the figure is the
 * client's alone): `node --conditions=source bench/profile/publish-client.ts <servicebus|pubsub>`.
 * Interleaved rounds of N concurrent publishes (`ROUNDS`, default 12, the first two unrecorded;
 * `N` default 5,000): `ours` (`broker.publish` per message), `raw` (the bench's anchor: the SDK
 * by hand, no result per message), `rawp` (the same raw loop giving each message its own promise
 * resolved with its id once its batch is sent: what a per-message result costs by itself),
 * `oursb` (`broker.publishBatch` of the same messages: one promise for all).
 * Prints the median µs of CPU per message and ms per round of each. `ONLY=ours,raw` picks.
 * Service Bus: the in-repo peer in a child process on 127.0.0.3; Pub/Sub: pstest.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { rawServiceBusSend } from '../anchors.ts';

const platform = process.argv[2] ?? 'servicebus';
const N = Number(process.env.N ?? 5000);
const ROUNDS = Number(process.env.ROUNDS ?? 12);
const payload = (i: number) => ({ i, text: 'x'.repeat(400), tags: ['a', 'b', 'c'] });

/** One timed round; what it answers is run after the clock stops (closing the round's client). */
type Run = () => Promise<(() => Promise<void>) | undefined>;
interface Variants {
  ours: Run;
  /** `broker.publishBatch` of all N at once. */
  oursb: Run;
  raw: Run;
  rawp: Run;
}

async function serviceBus(): Promise<{ variants: Variants; close(): Promise<void> }> {
  const child = fork(fileURLToPath(import.meta.url), ['servicebus-peer'], {
    execArgv: ['--conditions=source'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const cs = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve(String(m)));
    child.once('exit', (code) => reject(new Error(`the peer exited (${code})`)));
  });
  const { ServiceBusClient } = await import('@azure/service-bus');
  const { ServiceBusBroker } = await import('../../adapters/azure/index.ts');
  const client = new ServiceBusClient(cs);
  const queue = () => `p-${randomUUID().slice(0, 8)}`;
  // each side's first sender or broker stays referenced (so no round starts with cold code: the
  // bench's keepFirst); every round's is closed after its clock stops
  const kept: unknown[] = [];
  const rawLoop = async (perMessage: boolean) => {
    const sender = client.createSender(queue());
    if (kept.length < 4) kept.push(sender);
    await sender.sendMessages({ body: Buffer.from('{}'), subject: 'warm-up' });
    await rawServiceBusSend(sender, N, payload, { perMessage });
    return () => sender.close();
  };
  return {
    variants: {
      ours: async () => {
        const broker = new ServiceBusBroker({ client, queue: queue(), logger: false });
        if (kept.length < 3) kept.push(broker);
        await Promise.all(Array.from({ length: N }, (_, i) => broker.publish(payload(i), 'bench')));
        return () => broker.stop();
      },
      oursb: async () => {
        const broker = new ServiceBusBroker({ client, queue: queue(), logger: false });
        if (kept.length < 4) kept.push(broker);
        await broker.publishBatch(
          Array.from({ length: N }, (_, i) => ({ body: payload(i), target: 'bench' })),
        );
        return () => broker.stop();
      },
      raw: () => rawLoop(false),
      rawp: () => rawLoop(true),
    },
    async close() {
      await client.close();
      child.kill();
    },
  };
}

async function pubsub(): Promise<{ variants: Variants; close(): Promise<void> }> {
  const { PubSub } = await import('@google-cloud/pubsub');
  const { PubSubBroker } = await import('../../adapters/gcp/index.ts');
  const { startPstest } = await import('../../test/emulators/gcp/pstest.ts');
  const peer = await startPstest();
  const project = 'probe';
  const client = new PubSub({ projectId: project, apiEndpoint: peer.endpoint });
  let k = 0;
  const topic = async () => {
    const name = `t${k++}`;
    await client.createTopic(name);
    return name;
  };
  const window = async (publish: (i: number) => Promise<string>) => {
    for (let i = 0; i < N; i += 1000) {
      const b: Promise<string>[] = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) b.push(publish(j));
      await Promise.all(b);
    }
  };
  const kept: unknown[] = [];
  return {
    variants: {
      ours: async () => {
        const broker = new PubSubBroker({ client, topic: await topic(), logger: false });
        if (kept.length === 0) kept.push(broker);
        await window((i) => broker.publish(payload(i), 'bench'));
        return () => broker.stop();
      },
      oursb: async () => {
        const broker = new PubSubBroker({ client, topic: await topic(), logger: false });
        if (kept.length < 2) kept.push(broker);
        for (let i = 0; i < N; i += 1000)
          await broker.publishBatch(
            Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({
              body: payload(i + j),
              target: 'bench',
            })),
          );
        return () => broker.stop();
      },
      raw: async () => {
        const t = client.topic(await topic());
        await window((i) =>
          t.publishMessage({
            data: Buffer.from(JSON.stringify(payload(i))),
            attributes: { target: 'bench', content_type: 'application/json' },
          }),
        );
        return undefined;
      },
      // the client already gives each message its own promise
      rawp: async () => undefined,
    },
    async close() {
      await client.close();
      await peer.stop();
    },
  };
}

if (platform === 'servicebus-peer') {
  const { startServiceBusPeer, peerConnectionString } = await import(
    '../../test/emulators/servicebus/peer.ts'
  );
  const peer = await startServiceBusPeer({ host: '127.0.0.3' });
  process.send?.(peerConnectionString('127.0.0.3'));
  process.on('disconnect', () => void peer.close().finally(() => process.exit(0)));
  setTimeout(() => process.exit(0), 15 * 60_000).unref(); // bounded whatever happens
} else {
  const probe = platform === 'pubsub' ? await pubsub() : await serviceBus();
  const names = (process.env.ONLY ?? 'ours,oursb,raw,rawp')
    .split(',')
    .filter((n): n is keyof Variants => n in probe.variants)
    .filter((n) => platform !== 'pubsub' || n !== 'rawp');
  const got = new Map<string, [number, number][]>();
  for (let r = 0; r < ROUNDS; r++)
    for (const name of r % 2 ? [...names].reverse() : names) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const after = await probe.variants[name]();
      const c = process.cpuUsage(c0);
      const ms = performance.now() - t0;
      await after?.();
      if (r >= 2) got.set(name, [...(got.get(name) ?? []), [(c.user + c.system) / N, ms]]);
    }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const [name, xs] of got)
    console.log(
      `${platform} ${name}: ${med(xs.map((x) => x[0])).toFixed(2)} µs CPU a message, ${med(xs.map((x) => x[1])).toFixed(0)} ms a round`,
    );
  await probe.close();
}
