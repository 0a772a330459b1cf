/**
 * P4 — send throughput to Service Bus (the peer, started here through
 * `startServiceBus()` of test/emulators/azure/setup.ts, or the namespace in
 * CLOUDMOM_SERVICEBUS_CONNECTION_STRING): `ServiceBusBroker.publish` of N concurrent messages
 * (the core batches them, the transport packs `createMessageBatch` batches) against the raw
 * `@azure/service-bus` sender doing the same work by hand — encode each body, fill
 * `createMessageBatch` batches to the link size, `sendMessages` each batch. Best of 10 rounds
 * each, alternating which goes first, fresh queues per round (best-of, because other processes
 * share the CPU); a second row divides by the CPU time of this process instead of the wall
 * clock, which other processes' load disturbs less.
 */
import { randomUUID } from 'node:crypto';
import { ServiceBusClient, type ServiceBusSender } from '@azure/service-bus';
import { ServiceBusBroker } from '../adapters/azure/index.ts';
import { startServiceBus } from '../test/emulators/azure/setup.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const N = Number(process.env.BENCH_AZURE_MESSAGES ?? 5000);
const ROUNDS = Number(process.env.BENCH_AZURE_ROUNDS ?? 10);
const payload = (i: number) => ({ i, text: 'x'.repeat(400), tags: ['a', 'b', 'c'] });

interface Round {
  /** Messages per wall-clock second. */
  wall: number;
  /** Messages per CPU second of this process (client and in-process peer). */
  cpu: number;
}

function timed(t0: number, c0: NodeJS.CpuUsage): Round {
  const dt = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall: (N / dt) * 1000, cpu: (N / (c.user + c.system)) * 1e6 };
}

async function cloudmomRound(connectionString: string): Promise<Round> {
  const queue = `bench-cm-${randomUUID().slice(0, 8)}`;
  const broker = new ServiceBusBroker({ connectionString, queue, logger: false });
  await broker.publish(payload(-1), 'warm-up');
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: N }, (_, i) => broker.publish(payload(i), 'bench')));
  const r = timed(t0, c0);
  await broker.stop();
  return r;
}

async function rawRound(client: ServiceBusClient): Promise<Round> {
  const queue = `bench-raw-${randomUUID().slice(0, 8)}`;
  const sender: ServiceBusSender = client.createSender(queue);
  await sender.sendMessages({ body: Buffer.from('{}'), subject: 'warm-up' });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const sends: Promise<void>[] = [];
  let batch = await sender.createMessageBatch();
  for (let i = 0; i < N; i++) {
    const message = {
      body: Buffer.from(JSON.stringify(payload(i))),
      messageId: randomUUID(),
      contentType: 'application/json',
      subject: 'bench',
    };
    if (!batch.tryAddMessage(message)) {
      sends.push(sender.sendMessages(batch));
      batch = await sender.createMessageBatch();
      if (!batch.tryAddMessage(message)) throw new Error('a single message does not fit a batch');
    }
  }
  if (batch.count > 0) sends.push(sender.sendMessages(batch));
  await Promise.all(sends);
  const r = timed(t0, c0);
  await sender.close();
  return r;
}

export const suite: BenchSuite = {
  name: 'azure',
  async run(): Promise<BenchRow[]> {
    const sb = await startServiceBus();
    const client = new ServiceBusClient(sb.connectionString);
    try {
      const cm: Round = { wall: 0, cpu: 0 };
      const raw: Round = { wall: 0, cpu: 0 };
      const best = (into: Round, r: Round) => {
        into.wall = Math.max(into.wall, r.wall);
        into.cpu = Math.max(into.cpu, r.cpu);
      };
      const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate which goes first, and collect garbage before each, so neither pays the other's.
        const order = r % 2 === 0 ? ['raw', 'cm'] : ['cm', 'raw'];
        for (const which of order) {
          gc();
          if (which === 'raw') best(raw, await rawRound(client));
          else best(cm, await cloudmomRound(sb.connectionString));
        }
      }
      const where = sb.isPeer ? 'peer on loopback' : 'namespace from env';
      const row = (kind: 'wall' | 'cpu', what: string, unit: string): BenchRow => {
        const ratio = Math.round((cm[kind] / raw[kind]) * 100) / 100;
        return {
          id: 'P4',
          case: `Service Bus send throughput, ${N} × ~0.5 KB JSON messages, ${what} (${where})`,
          value: Math.round(cm[kind]),
          unit,
          anchor: 'raw ServiceBusSender.sendMessages(createMessageBatch)',
          anchorValue: Math.round(raw[kind]),
          ratio,
          goal: '≥ 0.95',
          met: ratio >= 0.95,
        };
      };
      return [
        row('wall', `wall clock, best of ${ROUNDS}`, 'msg/s'),
        row('cpu', `per CPU second of client + in-process peer, best of ${ROUNDS}`, 'msg/CPU-s'),
      ];
    } finally {
      await client.close();
      await sb.stop();
    }
  },
};
