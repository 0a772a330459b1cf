/**
 * How cost grows (issue 13): publish and consume throughput at message sizes 1 KB, 64 KB,
 * 256 KB and 1 MB, at concurrency 1, 10 and 100, on the embedded broker (`MemoryBroker`) and
 * on SQS (fauxqs, in a process of its own); and the JS heap retained after GC with RSS beside
 * it at 100k and 200k messages (the core suite's C2 run, measured again here when that suite
 * did not run). Writes the curves to `docs/bench/curves.svg` (bench/svg.ts), which BENCHMARKS.md
 * shows.
 *
 * - publish at concurrency c: c publishers, each awaiting its publish before the next;
 * - consume at concurrency c: a queue filled beforehand, drained by `start()` with
 *   `concurrency: c` (SQS: receive 10, delete in batches).
 * Each point is one run of a fixed byte budget (fewer messages as they grow); best of
 * `BENCH_CURVE_ROUNDS` (1) runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateQueueCommand, DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MemoryBroker, MemoryHub } from 'cloudmom';
import { SqsBroker } from '../adapters/aws/index.ts';
import { startFauxqsProcess } from '../test/emulators/aws/fauxqs.ts';
import { awsClientConfig } from '../test/emulators/aws/moto.ts';
import { ROOT } from '../test/emulators/harness.ts';
import { memoryFigures, retained } from './core.bench.ts';
import { since } from './rounds.ts';
import { type Series, svgChart } from './svg.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const SIZES = [1024, 64 * 1024, 256 * 1024, 1000 * 1000] as const;
const CONCURRENCY = [1, 10, 100] as const;
const CURVE_ROUNDS = Number(process.env.BENCH_CURVE_ROUNDS ?? 1);
const label = (size: number) => (size >= 1e6 ? '1 MB' : `${size / 1024} KB`);

/** Messages per point: a byte budget per platform, at least `min`, at most `max`. */
function count(size: number, budget: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.floor(budget / size)));
}

/** Runs `n` publishes with `c` publishers, each awaiting its own. */
async function publishAll(n: number, c: number, publish: () => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(c, n) }, async () => {
      while (next++ < n) await publish();
    }),
  );
}

interface Platform {
  name: string;
  budget: number;
  min: number;
  max: number;
  /** A fresh broker on a fresh queue, consuming with `concurrency`. */
  broker(concurrency: number): Promise<{ broker: MemoryBroker | SqsBroker; done(): Promise<void> }>;
}

async function point(
  p: Platform,
  size: number,
  c: number,
): Promise<{ publish: number; consume: number }> {
  const n = count(size, p.budget, p.min, p.max);
  const body = 'x'.repeat(size - 64); // text body; the rest is attributes and envelope
  let best = { publish: 0, consume: 0 };
  for (let round = 0; round < CURVE_ROUNDS; round++) {
    const { broker, done } = await p.broker(c);
    let handled = 0;
    let drained!: () => void;
    const all = new Promise<void>((r) => {
      drained = r;
    });
    broker.add('curve', () => {
      if (++handled === n) drained();
    });
    let t0 = performance.now();
    await publishAll(n, c, () => broker.publish(body, 'curve'));
    const publish = n / since(t0);
    t0 = performance.now();
    await broker.start();
    await all;
    const consume = n / since(t0);
    await broker.stop();
    await done();
    best = { publish: Math.max(best.publish, publish), consume: Math.max(best.consume, consume) };
  }
  return best;
}

async function curves(p: Platform): Promise<Record<'publish' | 'consume', Series[]>> {
  const out: Record<'publish' | 'consume', Series[]> = { publish: [], consume: [] };
  for (const c of CONCURRENCY) {
    const pub: [number, number][] = [];
    const con: [number, number][] = [];
    for (const size of SIZES) {
      const r = await point(p, size, c);
      pub.push([size, r.publish]);
      con.push([size, r.consume]);
      process.stderr.write(
        `  ${p.name} ${label(size)} c=${c}: publish ${Math.round(r.publish)} msg/s, consume ${Math.round(r.consume)} msg/s\n`,
      );
    }
    out.publish.push({ name: `concurrency ${c}`, points: pub });
    out.consume.push({ name: `concurrency ${c}`, points: con });
  }
  return out;
}

export const suite: BenchSuite = {
  name: 'curves (size × concurrency; memory)',
  async run(): Promise<BenchRow[]> {
    const hub = new MemoryHub();
    let q = 0;
    const memory: Platform = {
      name: 'MemoryBroker',
      budget: 256 * 2 ** 20,
      min: 200,
      max: 20_000,
      async broker(concurrency) {
        const broker = new MemoryBroker({
          hub,
          queue: `curve-${q++}`,
          concurrency,
          logger: false,
          queueOptions: { maxMessageBytes: 2 * 2 ** 20 },
        });
        return { broker, done: async () => {} };
      },
    };
    const faux = await startFauxqsProcess();
    const sqs = new SQSClient(awsClientConfig(faux.endpoint));
    const sqsPlatform: Platform = {
      name: 'SqsBroker (fauxqs)',
      budget: 32 * 2 ** 20,
      min: 30,
      max: 2_000,
      async broker(concurrency) {
        const url = (
          await sqs.send(
            new CreateQueueCommand({
              QueueName: `curve-${Date.now()}-${q++}`,
              Attributes: { VisibilityTimeout: '60' },
            }),
          )
        ).QueueUrl!;
        const broker = new SqsBroker({
          queue: url,
          client: sqs,
          concurrency,
          logger: false,
          waitTimeSeconds: 1,
        });
        return {
          broker,
          done: async () => {
            await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
          },
        };
      },
    };
    let mem: Awaited<ReturnType<typeof curves>>;
    let onSqs: Awaited<ReturnType<typeof curves>>;
    try {
      mem = await curves(memory);
      onSqs = await curves(sqsPlatform);
    } finally {
      sqs.destroy();
      await faux.stop();
    }
    const m = memoryFigures ?? (await retained());
    const dir = join(ROOT, 'docs/bench');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'curves.svg'),
      svgChart({
        title: 'cloudmom throughput by message size and concurrency, and memory retained',
        panels: [
          { title: 'MemoryBroker publish (msg/s)', series: mem.publish, x: label },
          { title: 'MemoryBroker consume (msg/s)', series: mem.consume, x: label },
          { title: 'SqsBroker publish on fauxqs (msg/s)', series: onSqs.publish, x: label },
          { title: 'SqsBroker consume on fauxqs (msg/s)', series: onSqs.consume, x: label },
        ],
        bars: {
          title: 'MemoryBroker: growth after GC over a run (MB)',
          groups: [
            { name: '100k msgs', values: { 'JS heap': m.n100.heap, RSS: m.n100.rss } },
            { name: '200k msgs', values: { 'JS heap': m.n200.heap, RSS: m.n200.rss } },
          ],
        },
      }),
    );
    const rows: BenchRow[] = [];
    for (const [platform, data] of [
      ['MemoryBroker', mem],
      ['SqsBroker on fauxqs', onSqs],
    ] as const)
      for (const kind of ['publish', 'consume'] as const)
        for (const s of data[kind])
          rows.push({
            id: 'CURVE',
            case: `${platform} ${kind}, ${s.name}: ${s.points.map(([x]) => label(x)).join(' / ')}`,
            value: Math.round(s.points[0]![1]),
            unit: 'msg/s',
            text: `${s.points.map(([, y]) => Math.round(y).toLocaleString('en-US')).join(' / ')} msg/s`,
          });
    rows.push({
      id: 'CURVE',
      case: 'curves drawn to docs/bench/curves.svg',
      value: 0,
      unit: '',
      text: '![](docs/bench/curves.svg)',
    });
    return rows;
  },
};
