/**
 * No message content in any log line on Cloudflare Queues (see test/log-safety.ts), in
 * workerd (Miniflare): the marked messages published by a `CloudflareQueueBroker` inside the
 * Worker and consumed by `queueHandler` (retries, replies, dead-lettering to the dead-letter
 * queue), at `warn` and at `debug`, with and without `nodejs_compat` (the default JSON logger
 * writes to the console, or to `process.stderr`); workerd's stdout and stderr are captured.
 */
import { readFileSync } from 'node:fs';
import type { Miniflare } from 'miniflare';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorker, startWorker } from '../emulators/cloudflare/workerd.ts';
import { DEAD_TARGETS, expectNoMarker, LEVELS, until } from '../log-safety.ts';

let script: string;
beforeAll(async () => {
  script = readFileSync(
    (await bundleWorker('test/cloudflare/worker/log-safety.ts', 'log-safety-worker')).path,
    'utf8',
  );
}, 60_000);

let mf: Miniflare | undefined;
afterEach(async () => {
  await mf?.dispose();
  mf = undefined;
});

const fast = { maxBatchSize: 100, maxBatchTimeout: 0.05 };

describe.each(LEVELS)('at %s, no log line carries the marker', (level) => {
  for (const compat of [false, true]) {
    it(`queueHandler in workerd${compat ? ' (nodejs_compat: process.stderr)' : ' (console)'}: publish, retry, reply, dead-letters`, async () => {
      const output: string[] = [];
      mf = await startWorker({
        script,
        compatibilityFlags: compat ? ['nodejs_compat'] : [],
        bindings: { LOG_LEVEL: level },
        queueProducers: { QUEUE: { queueName: 'q' }, DEAD_LETTERS: { queueName: 'dlq' } },
        queueConsumers: { q: { ...fast, maxRetries: 10 }, dlq: fast },
        handleRuntimeStdio(stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) {
          for (const s of [stdout, stderr]) s.on('data', (c: Buffer) => output.push(c.toString()));
        },
      });
      const get = async <T>(path: string): Promise<T> =>
        (await (await mf!.dispatchFetch(`http://worker${path}`)).json()) as T;
      expect(await get('/publish-marked')).toEqual({ published: 7 });
      let dead: { target?: string; reason?: string; descriptionHasMarker: boolean }[] = [];
      await until('the dead letters', async () => {
        dead = await get('/dead-letters');
        return dead.length >= DEAD_TARGETS.length;
      });
      // ok ×2, echo, and the echo's reply
      await until('the acks', async () => (await get<{ acked: number }>('/stats')).acked >= 4);
      const stats = await get<{ repliesSent: number; acked: number; retried: number }>('/stats');
      expect(stats.repliesSent).toBe(1);
      expect(stats.retried).toBeGreaterThanOrEqual(1);
      expect(dead.map((d) => d.target).sort()).toEqual([...DEAD_TARGETS].sort());
      expect(dead.some((d) => d.descriptionHasMarker)).toBe(true);
      await mf.dispose();
      mf = undefined;
      expectNoMarker(output, DEAD_TARGETS.length);
    });
  }
});
