/**
 * Service Bus throughput, both ways. Send (P4) (against the peer, started here in a process of its
 * own through `startServiceBus({ childProcess: true })` of test/emulators/azure/setup.ts, or the
 * namespace in CLOUDMOM_SERVICEBUS_CONNECTION_STRING): `ServiceBusBroker.publish` of N concurrent
 * messages (the core batches them, the transport packs `createMessageBatch` batches) against the
 * raw `@azure/service-bus` sender doing the same work by hand — encode each body, fill
 * `createMessageBatch` batches to the link size, `sendMessages` each batch. Two shapes, each
 * against its own limit: `publishBatch(entries)` (one promise for all N; its caller holds the N
 * bodies, made before the clock) against that raw loop over the same array of bodies, and `publish`
 * per message (a promise each) against the same raw loop giving each message its own promise
 * resolved with its id (`perMessage`: what a result per message costs by itself); a third row puts
 * `publish` against the plain raw loop, without a goal. `BENCH_AZURE_ROUNDS` (21) interleaved
 * rounds (bench/rounds.ts), fresh queues per round; each row again divided by the CPU time of this
 * process instead of the wall clock: the client's alone, since the peer has its own process (it
 * used to run in this one: the figure then mixed the peer's work, and one event loop shared by
 * both, into the client's).
 *
 * The GC forced before each round (bench/rounds.ts) deoptimizes the SDK's AMQP encoder (rhea's
 * generic writer; "weak objects": ~860 deopts in 8 rounds against 34 without), so a raw round's
 * code starts cold and a message costs ~2.5× the client CPU of a warm process (~50 µs against
 * ~20). cloudmom hands the SDK only the first message of each link batch and encodes the rest
 * itself (adapters/azure/amqp.ts), so its rounds pay the cold SDK encoder once a link batch, not
 * once a message: the ratios here (1.4–2.3×) are larger than in a warm process, where
 * bench/profile/publish-client.ts reads ~11–12 µs a message for cloudmom against ~13–17 for the
 * raw loop. Without the GC, the garbage of earlier rounds lands a full GC in random rounds and
 * the spread doubles.
 *
 * Consume (issue 13): `ServiceBusBroker.start()` draining a queue pre-filled with N messages
 * (a handler that does nothing, `concurrency` 50: the core completes each message) against the
 * raw `receiver.subscribe` with `maxConcurrentCalls` 50 completing each in `processMessage`.
 * `BENCH_AZURE_CONSUME_ROUNDS` (9; it was 5 until the peer moved to its own process, when two
 * runs read 0.94 and 0.86, each with a spread of ±40 %) interleaved rounds. Each side keeps its
 * first broker, sender or receiver referenced through the rounds (bench/rounds.ts `keepFirst`).
 */
import { randomUUID } from 'node:crypto';
import { ServiceBusClient, type ServiceBusSender } from '@azure/service-bus';
import { ServiceBusBroker } from '../adapters/azure/index.ts';
import { startServiceBus } from '../test/emulators/azure/setup.ts';
import { rawServiceBusSend } from './anchors.ts';
import { interleave, keepFirst, ratioRow } from './rounds.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const N = Number(process.env.BENCH_AZURE_MESSAGES ?? 5000);
const ROUNDS = Number(process.env.BENCH_AZURE_ROUNDS ?? 21);
const CONSUME_N = Number(process.env.BENCH_AZURE_CONSUME_MESSAGES ?? 3000);
const CONSUME_ROUNDS = Number(process.env.BENCH_AZURE_CONSUME_ROUNDS ?? 9);
const CONCURRENCY = 50;

/** The send variants: ours as one batch call or a call per message, and their raw limits. */
type Variant = 'cmb' | 'rawa' | 'raw' | 'cm' | 'rawp';
const SHAPES: Record<'cmb' | 'cm', string> = {
  cmb: 'one publishBatch(entries)',
  cm: 'a publish() per message',
};
const ANCHORS: Record<'raw' | 'rawa' | 'rawp', string> = {
  raw: 'raw ServiceBusSender.sendMessages(createMessageBatch)',
  rawa: 'the same raw loop over the same array of bodies',
  rawp: 'the same raw loop with a promise per message resolved with its id',
};
const payload = (i: number) => ({ i, text: 'x'.repeat(400), tags: ['a', 'b', 'c'] });

interface Round {
  /** Messages per wall-clock second. */
  wall: number;
  /** Messages per CPU second of this process: the client's (the peer has its own). */
  cpu: number;
}

function timed(t0: number, c0: NodeJS.CpuUsage): Round {
  const dt = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall: (N / dt) * 1000, cpu: (N / (c.user + c.system)) * 1e6 };
}

async function cloudmomRound(client: ServiceBusClient, batch: boolean): Promise<Round> {
  const queue = `bench-cm-${randomUUID().slice(0, 8)}`;
  // The same client (connection) as the raw rounds: only the publish path differs.
  const broker = keepFirst(
    batch ? 'send ours batch' : 'send ours',
    new ServiceBusBroker({ client, queue, logger: false }),
  );
  await broker.publish(payload(-1), 'warm-up');
  // a batch call's caller holds its bodies already: made before the clock, as for rawArray
  const bodies = batch ? Array.from({ length: N }, (_, i) => payload(i)) : [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  if (batch) await broker.publishBatch(bodies.map((body) => ({ body, target: 'bench' })));
  else await Promise.all(Array.from({ length: N }, (_, i) => broker.publish(payload(i), 'bench')));
  const r = timed(t0, c0);
  await broker.stop();
  return r;
}

/** `perMessage`: a promise per message; `array`: the bodies made before the clock (a batch call's caller). */
async function rawRound(
  client: ServiceBusClient,
  shape: 'perMessage' | 'array' | 'plain',
): Promise<Round> {
  const queue = `bench-raw-${randomUUID().slice(0, 8)}`;
  const sender: ServiceBusSender = keepFirst(`send raw ${shape}`, client.createSender(queue));
  await sender.sendMessages({ body: Buffer.from('{}'), subject: 'warm-up' });
  const bodies = shape === 'array' ? Array.from({ length: N }, (_, i) => payload(i)) : [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await rawServiceBusSend(sender, N, shape === 'array' ? (i) => bodies[i] : payload, {
    perMessage: shape === 'perMessage',
  });
  const r = timed(t0, c0);
  await sender.close();
  return r;
}

/** A fresh queue holding CONSUME_N messages as cloudmom publishes them. */
async function filledQueue(client: ServiceBusClient, prefix: string): Promise<string> {
  const queue = `${prefix}-${randomUUID().slice(0, 8)}`;
  const broker = new ServiceBusBroker({ client, queue, logger: false });
  await Promise.all(
    Array.from({ length: CONSUME_N }, (_, i) => broker.publish(payload(i), 'bench')),
  );
  await broker.stop();
  return queue;
}

async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('consume bench: timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function cloudmomConsume(client: ServiceBusClient): Promise<number> {
  const queue = await filledQueue(client, 'bench-cc');
  const broker = keepFirst(
    'consume ours',
    new ServiceBusBroker({ client, queue, logger: false, concurrency: CONCURRENCY }),
  );
  let seen = 0;
  broker.add('bench', () => {
    seen++;
  });
  const t0 = performance.now();
  await broker.start();
  await until(() => broker.stats.acked >= CONSUME_N);
  const rate = (CONSUME_N / (performance.now() - t0)) * 1000;
  await broker.stop();
  if (seen !== CONSUME_N) throw new Error(`consume bench: ${seen} of ${CONSUME_N} handled`);
  return rate;
}

async function rawConsume(client: ServiceBusClient): Promise<number> {
  const queue = await filledQueue(client, 'bench-rc');
  const receiver = keepFirst(
    'consume raw',
    client.createReceiver(queue, { receiveMode: 'peekLock', skipParsingBodyAsJson: true }),
  );
  let done = 0;
  const t0 = performance.now();
  const sub = receiver.subscribe(
    {
      processMessage: async (m) => {
        JSON.parse(Buffer.from(m.body as Buffer).toString('utf8'));
        await receiver.completeMessage(m);
        done++;
      },
      processError: async () => {},
    },
    { autoCompleteMessages: false, maxConcurrentCalls: CONCURRENCY },
  );
  await until(() => done >= CONSUME_N);
  const rate = (CONSUME_N / (performance.now() - t0)) * 1000;
  await sub.close();
  await receiver.close();
  return rate;
}

export const suite: BenchSuite = {
  name: 'azure',
  async run(): Promise<BenchRow[]> {
    const sb = await startServiceBus({ childProcess: true });
    const client = new ServiceBusClient(sb.connectionString);
    try {
      const rounds: Record<Variant, Round[]> = { cmb: [], rawa: [], raw: [], cm: [], rawp: [] };
      const variant = (name: Variant, run: () => Promise<Round>) => async () => {
        const r = await run();
        rounds[name].push(r);
        return r.wall;
      };
      await interleave(
        {
          raw: variant('raw', () => rawRound(client, 'plain')),
          cmb: variant('cmb', () => cloudmomRound(client, true)),
          rawa: variant('rawa', () => rawRound(client, 'array')),
          rawp: variant('rawp', () => rawRound(client, 'perMessage')),
          cm: variant('cm', () => cloudmomRound(client, false)),
        },
        ROUNDS,
        { warmup: 1, log: 'P4 Service Bus send msg/s' },
      );
      // the warm-up's figures are the first of each
      for (const r of Object.values(rounds)) r.shift();
      const where = sb.isPeer ? 'peer on loopback' : 'namespace from env';
      const row = (
        ours: 'cmb' | 'cm',
        anchor: 'raw' | 'rawa' | 'rawp',
        kind: 'wall' | 'cpu',
        what: string,
        unit: string,
        goal = true,
      ): BenchRow =>
        ratioRow({
          id: 'P4',
          case: `Service Bus send throughput, ${N} × ~0.5 KB JSON messages, ${SHAPES[ours]}, ${what} (${where})`,
          unit,
          ours: rounds[ours].map((r) => r[kind]),
          anchor: rounds[anchor].map((r) => r[kind]),
          anchorName: ANCHORS[anchor],
          goal: goal ? ['≥', 0.95] : undefined,
        });
      const consume = await interleave(
        { raw: () => rawConsume(client), cm: () => cloudmomConsume(client) },
        CONSUME_ROUNDS,
        { warmup: 0, log: 'Service Bus consume msg/s' },
      );
      const cpu = 'per CPU second of the client (peer in its own process)';
      return [
        row('cmb', 'rawa', 'wall', 'wall clock', 'msg/s'),
        row('cmb', 'rawa', 'cpu', cpu, 'msg/CPU-s'),
        row('cm', 'rawp', 'wall', 'wall clock', 'msg/s'),
        row('cm', 'rawp', 'cpu', cpu, 'msg/CPU-s'),
        row('cm', 'raw', 'wall', 'wall clock', 'msg/s', false),
        ratioRow({
          id: 'P4',
          case: `Service Bus consume throughput, ${CONSUME_N} × ~0.5 KB JSON messages, concurrency ${CONCURRENCY}, wall clock (${where})`,
          unit: 'msg/s',
          ours: consume.cm,
          anchor: consume.raw,
          anchorName: 'raw ServiceBusReceiver.subscribe + completeMessage',
          goal: ['≥', 0.9],
        }),
      ];
    } finally {
      await client.close();
      await sb.stop();
    }
  },
};
