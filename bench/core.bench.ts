/**
 * Core benchmarks on the embedded broker:
 * - C1 `request()` round trip latency (p50, p99), one request at a time;
 * - C2 throughput of N messages at concurrency 100 and RSS growth, for N = 100k and 200k
 *   (growth should stay flat when N doubles: nothing is retained per message).
 */
import { MemoryBroker, MemoryHub } from 'cloudmom';
import type { BenchRow, BenchSuite } from './types.ts';

const gc = (globalThis as { gc?: () => void }).gc;

function memMB(): { rss: number; heap: number } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function requestLatency(count: number): Promise<{ p50: number; p99: number }> {
  const hub = new MemoryHub();
  const service = new MemoryBroker({ hub, queue: 'bench-rpc', logger: false });
  service.add('echo', (_p, body) => body);
  const client = new MemoryBroker({ hub, queue: 'bench-rpc', logger: false });
  await service.start();
  for (let i = 0; i < 2000; i++) await client.request(i, 'echo'); // warm-up (JIT)
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    await client.request(i, 'echo');
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  await client.stop();
  await service.stop();
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

async function throughput(
  n: number,
): Promise<{ perSecond: number; rssGrowthMB: number; heapGrowthMB: number }> {
  const hub = new MemoryHub();
  const broker = new MemoryBroker({ hub, queue: `bench-${n}`, concurrency: 100, logger: false });
  let handled = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => {
    done = r;
  });
  broker.add('work', () => {
    if (++handled === n) done();
  });
  await broker.start();
  const before = memMB();
  const t0 = performance.now();
  // The producer keeps at most 1,000 publishes outstanding and the queue under 2,000 deep,
  // as a producer with backpressure would; what grows then is what the broker retains.
  for (let i = 0; i < n; i += 1000) {
    while (broker.queue.depth > 2000) await new Promise((r) => setImmediate(r));
    const batch: Promise<string>[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) batch.push(broker.publish({ j }, 'work'));
    await Promise.all(batch);
  }
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await broker.stop();
  const after = memMB();
  return {
    perSecond: n / seconds,
    rssGrowthMB: after.rss - before.rss,
    heapGrowthMB: after.heap - before.heap,
  };
}

/** Growth after GC (MB) at 100k and 200k messages, from the last C2 run (the curves suite draws it). */
export let memoryFigures:
  | { n100: { heap: number; rss: number }; n200: { heap: number; rss: number } }
  | undefined;

/** C2: a warm-up, then 100k and 200k messages; sets {@link memoryFigures}. */
export async function retained(): Promise<NonNullable<typeof memoryFigures>> {
  // Warm-up: JIT, and the process's one-off growth to working size. The RSS of a fresh process
  // grows by tens of MB over its first ~100k messages while the JS heap after GC stays flat
  // (V8's pages and malloc's arenas reach working size; with MALLOC_ARENA_MAX=1 the growth
  // stops there and stays at 0 for every later run), so growth is measured after it.
  warmUp = await throughput(100_000);
  const t100 = await throughput(100_000);
  const t200 = await throughput(200_000);
  memoryFigures = {
    n100: { heap: t100.heapGrowthMB, rss: t100.rssGrowthMB },
    n200: { heap: t200.heapGrowthMB, rss: t200.rssGrowthMB },
  };
  lastRuns = { t100, t200, warmUp };
  return memoryFigures;
}
let lastRuns: { t100: Throughput; t200: Throughput; warmUp: Throughput } | undefined;
let warmUp: Throughput | undefined;
type Throughput = Awaited<ReturnType<typeof throughput>>;

export const suite: BenchSuite = {
  name: 'core (embedded broker)',
  async run(): Promise<BenchRow[]> {
    const lat = await requestLatency(20_000);
    await retained();
    const { t100, t200, warmUp: first } = lastRuns!;
    return [
      {
        id: 'C1',
        case: 'MemoryBroker request() round trip, p50',
        value: round(lat.p50),
        unit: 'µs',
        goal: '≤ 50 µs',
        met: lat.p50 <= 50,
      },
      {
        id: 'C1',
        case: 'MemoryBroker request() round trip, p99',
        value: round(lat.p99),
        unit: 'µs',
      },
      {
        id: 'C2',
        case: 'first 100k messages of the process (warm-up): RSS growth, one-off (JS heap after GC: see the next rows)',
        value: round(first.rssGrowthMB),
        unit: 'MB',
      },
      {
        id: 'C2',
        case: '100k messages, concurrency 100 (after the warm-up)',
        value: Math.round(t100.perSecond),
        unit: 'msg/s',
      },
      {
        id: 'C2',
        case: '100k messages: JS heap growth after GC (what is retained)',
        value: round(t100.heapGrowthMB),
        unit: 'MB',
        goal: '< 2 MB',
        met: t100.heapGrowthMB < 2,
      },
      {
        id: 'C2',
        case: '100k messages: RSS growth',
        value: round(t100.rssGrowthMB),
        unit: 'MB',
        goal: '< 20 MB',
        met: t100.rssGrowthMB < 20,
      },
      {
        id: 'C2',
        case: '200k messages, concurrency 100',
        value: Math.round(t200.perSecond),
        unit: 'msg/s',
      },
      {
        id: 'C2',
        case: '200k messages: JS heap growth after GC (flat when N doubles)',
        value: round(t200.heapGrowthMB),
        unit: 'MB',
        anchor: '100k growth',
        anchorValue: round(t100.heapGrowthMB),
        goal: '≤ max(100k growth, 0) + 1 MB',
        met: t200.heapGrowthMB <= Math.max(t100.heapGrowthMB, 0) + 1,
      },
      {
        id: 'C2',
        case: '200k messages: RSS growth',
        value: round(t200.rssGrowthMB),
        unit: 'MB',
        anchor: '100k growth',
        anchorValue: round(t100.rssGrowthMB),
        goal: '< 20 MB',
        met: t200.rssGrowthMB < 20,
      },
    ];
  },
};

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
