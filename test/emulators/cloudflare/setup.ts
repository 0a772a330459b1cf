/**
 * Global setup of the `cloudflare` test project: checks that workerd runs here (through the
 * wrapper of `workerd.ts`), and bundles the test Workers (`test/cloudflare/worker/index.ts` and
 * `fuzz.ts`, which import `cloudmom/cloudflare` from source) with esbuild, once per run. Tests get the
 * bundle's path as `inject('cloudflareWorkerBundle')` and start their own Miniflare instances
 * with `startWorker()` (each with the queues it needs; ~100 ms), which stop with the test file.
 *
 * Why Miniflare from the suite and not `@cloudflare/vitest-plugin`: the suite's tests are Node
 * tests that must also reach other peers (moto) and Node-side brokers; the plugin would run
 * them inside workerd with its own pool, is not installed, and its sibling
 * `@cloudflare/vitest-pool-workers` does not accept vitest 5. Miniflare runs the same workerd
 * and gives the test process queue producers (`getQueueProducer`) and `dispatchFetch`.
 */
import type { TestProject } from 'vitest/node';
import { log } from '../harness.ts';
import { bundleWorker, checkWorkerd } from './workerd.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the bundled test Worker (ES module, no `node:` imports). */
    cloudflareWorkerBundle: string;
    /** Path of the bundled fuzz Worker (test/cloudflare/worker/fuzz.ts, with fast-check). */
    cloudflareFuzzBundle: string;
  }
}

export default async function setup(project: TestProject) {
  const t0 = Date.now();
  const version = checkWorkerd();
  const [worker, fuzz] = await Promise.all([
    bundleWorker('test/cloudflare/worker/index.ts', 'test-worker'),
    bundleWorker('test/cloudflare/worker/fuzz.ts', 'fuzz-worker'),
  ]);
  log(
    'workerd',
    `${version} runs; test worker bundled (${worker.bytes} bytes) in ${Date.now() - t0} ms`,
  );
  project.provide('cloudflareWorkerBundle', worker.path);
  project.provide('cloudflareFuzzBundle', fuzz.path);
}
