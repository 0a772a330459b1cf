/**
 * `queueHandler` fuzzed inside workerd: fast-check runs in the fuzz Worker
 * (test/cloudflare/worker/fuzz.ts) on 1,000 generated batches; this file starts it and reads
 * the verdict. Dead-letter copies and replies go through real producer bindings.
 */
import { readFileSync } from 'node:fs';
import type { Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { startWorker } from '../emulators/cloudflare/workerd.ts';

let mf: Miniflare;
beforeAll(async () => {
  const fast = { maxBatchSize: 100, maxBatchTimeout: 0.05 };
  mf = await startWorker({
    script: readFileSync(inject('cloudflareFuzzBundle'), 'utf8'),
    queueProducers: {
      QUEUE: { queueName: 'fuzz' },
      DEAD_LETTERS: { queueName: 'fuzz-dlq' },
      REPLIES: { queueName: 'fuzz-replies' },
    },
    queueConsumers: { 'fuzz-dlq': fast, 'fuzz-replies': fast },
  });
});
afterAll(async () => {
  await mf?.dispose();
});

it('1,000 generated batches: no crash, every message acked after its handler, retried, or dead-lettered with its reason', async () => {
  const seed = Number(process.env.CLOUDMOM_FUZZ_SEED ?? Date.now() % 2 ** 31);
  const res = await mf.dispatchFetch(`http://worker/fuzz?runs=1000&seed=${seed}`);
  const r = (await res.json()) as {
    ok: boolean;
    messages: number;
    outcomes: Record<string, number>;
    failure?: string;
  };
  expect(r.failure, `seed ${seed} (CLOUDMOM_FUZZ_SEED=${seed} to replay)`).toBeUndefined();
  expect(r.ok).toBe(true);
  console.log(`fuzz (seed ${seed}): ${r.messages} messages`, r.outcomes);
  for (const k of [
    'handled',
    'discarded',
    'retry',
    'dead:undecodable',
    'dead:missing-target',
    'dead:handler-failed',
    'dead:reply-not-allowed',
  ])
    expect(r.outcomes[k], k).toBeGreaterThan(0);
}, 180_000);
