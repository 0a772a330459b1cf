/**
 * What a queued publish keeps alive until its batch is sent (the objects a per-call publish
 * makes that a raw SDK loop lets die young: what the GC copies when it runs during a burst):
 * `node --conditions=source --expose-gc bench/profile/retained.ts`. Publishes N messages on a
 * `ServiceBusBroker` whose batches never leave (a long linger, no peer needed), forces a GC,
 * and prints the heap retained per queued publish, then the difference of two heap snapshots
 * by object kind (bytes per message, count). The pool slabs holding the bodies
 * (`JSArrayBufferData`) are outside the JS heap.
 */
import { readFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
import { ServiceBusClient } from '@azure/service-bus';
import { ServiceBusBroker } from '../../adapters/azure/index.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const N = 5000;
const payload = (i: number) => ({ i, text: 'x'.repeat(400), tags: ['a', 'b', 'c'] });
const client = new ServiceBusClient(
  'Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=k;SharedAccessKey=a2V5',
);
const broker = new ServiceBusBroker({
  client,
  queue: 'q',
  logger: false,
  batch: { lingerMs: 600_000, maxMessages: 100_000 },
});
const burst = () => {
  const sent: Promise<string>[] = [];
  for (let i = 0; i < N; i++) sent.push(broker.publish(payload(i), 'bench'));
  // never settled: the batches wait for a linger longer than the run, which exits first
  return sent;
};
for (let r = 0; r < 3; r++) {
  gc();
  const h0 = process.memoryUsage().heapUsed;
  const sent = burst();
  gc();
  console.log(
    `retained per queued publish: ${((process.memoryUsage().heapUsed - h0) / N).toFixed(0)} B (${sent.length})`,
  );
}

/** Count and self size per object kind of a heap snapshot. */
function kinds(file: string): Map<string, [number, number]> {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields as string[];
  const types = snap.snapshot.meta.node_types[0] as string[];
  const [t, n, s] = ['type', 'name', 'self_size'].map((k) => fields.indexOf(k)) as [
    number,
    number,
    number,
  ];
  const out = new Map<string, [number, number]>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + t]]!;
    const name =
      type === 'object' || type === 'closure' ? String(snap.strings[snap.nodes[i + n]]) : '';
    const k = `${type}${name ? `:${name.slice(0, 40)}` : ''}`;
    const e = out.get(k) ?? [0, 0];
    e[0]++;
    e[1] += snap.nodes[i + s];
    out.set(k, e);
  }
  return out;
}
gc();
// the baseline is read after the second snapshot, so its parsed copy is in neither
const baseline = writeHeapSnapshot('/tmp/retained-0.heapsnapshot');
const sent = burst();
gc();
const after = kinds(writeHeapSnapshot('/tmp/retained-1.heapsnapshot'));
const base = kinds(baseline);
const rows = [...after].map(([k, [c, b]]) => {
  const [c0, b0] = base.get(k) ?? [0, 0];
  return [k, c - c0, b - b0] as const;
});
for (const [k, c, b] of rows.sort((x, y) => y[2] - x[2]).slice(0, 12))
  console.log(`${(b / N).toFixed(0).padStart(6)} B/msg ${String(c).padStart(7)}  ${k}`);
console.log(`(${sent.length} queued)`);
process.exit(0);
