/**
 * The Cloudflare test peer: Miniflare 4 (npm) driving the real `workerd` runtime (the binary of
 * `@cloudflare/workerd-linux-64`). Miniflare is a library, not a server we spawn: each test file
 * starts its own instance with its own queues (~100 ms), so {@link startPeer}'s "spawn a server,
 * wait for a port" shape does not fit; this file keeps its rules instead:
 *
 * - `CLOUDMOM_WORKERD` names a workerd binary to use instead of the npm one;
 * - workerd runs through a wrapper that kills it when the test process that started it dies
 *   (`setpriv --pdeathsig`) or after {@link PEER_LIFETIME_S} at the latest, so an orphan stops by
 *   itself (Miniflare ends it with SIGKILL, which a `timeout` parent could not forward);
 * - every socket is on 127.0.0.1 (the worker's entry socket and Miniflare's loopback server);
 * - the Worker under test is bundled with esbuild from the project's sources ({@link bundleWorker}).
 *
 * @example
 * ```ts
 * const mf = await startWorker({ script: readFileSync(inject('cloudflareWorkerBundle'), 'utf8'),
 *   queueProducers: { QUEUE: { queueName: 'q' } }, queueConsumers: { q: { maxRetries: 3 } } });
 * await (await mf.getQueueProducer('QUEUE')).send({ hello: 1 });
 * await mf.dispose();
 * ```
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Miniflare, type MiniflareOptions } from 'miniflare';
import { cacheDir, PEER_LIFETIME_S, ROOT } from '../harness.ts';

/** Environment variable naming a workerd binary that replaces the one from npm. */
export const WORKERD_ENV = 'CLOUDMOM_WORKERD';
/** Compatibility date of every test worker (the installed workerd supports it). */
export const COMPATIBILITY_DATE = '2026-04-01';

/** The workerd binary: `$CLOUDMOM_WORKERD`, else the one `@cloudflare/workerd-linux-64` ships. */
export function workerdBinary(): string {
  const fromEnv = process.env[WORKERD_ENV];
  if (fromEnv) return fromEnv;
  try {
    // The `workerd` package's main export is the platform binary's path.
    const require = createRequire(join(ROOT, 'package.json'));
    const resolved = require('workerd') as string | { default: string };
    return typeof resolved === 'string' ? resolved : resolved.default;
  } catch (cause) {
    throw new Error(
      `workerd is not installed (npm package \`workerd\` with \`@cloudflare/workerd-linux-64\`, a dependency of miniflare): run \`npm install\`, or set ${WORKERD_ENV} to a workerd binary`,
      { cause },
    );
  }
}

/**
 * Writes (once) the wrapper Miniflare runs instead of workerd and returns its path: it `exec`s
 * workerd under `setpriv --pdeathsig KILL` with a watchdog that kills it after the lifetime.
 */
export function workerdWrapper(binary = workerdBinary()): string {
  const path = join(cacheDir('cloudflare'), 'workerd-wrapper.sh');
  const script = `#!/bin/sh
# Written by test/emulators/cloudflare/workerd.ts: workerd dies with the process that started
# it, and after ${PEER_LIFETIME_S} s at the latest.
pid=$$
(
  exec </dev/null >/dev/null 2>&1 3>&-
  end=$(( $(date +%s) + ${PEER_LIFETIME_S} ))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$end" ]; then kill -9 "$pid"; exit 0; fi
    sleep 2
  done
) &
exec setpriv --pdeathsig KILL -- '${binary.replaceAll("'", "'\\''")}' "$@"
`;
  writeFileSync(path, script);
  chmodSync(path, 0o755);
  return path;
}

/**
 * Checks that workerd runs here; returns its version line. Fails naming what is missing.
 */
export function checkWorkerd(): string {
  const binary = workerdBinary();
  if (!existsSync(binary)) {
    throw new Error(
      `workerd binary not found at ${binary}: reinstall miniflare (npm install), or set ${WORKERD_ENV}`,
    );
  }
  if (spawnSync('sh', ['-c', 'command -v setpriv']).status !== 0) {
    throw new Error(
      '`setpriv` (util-linux) is not installed; the workerd wrapper needs it so workerd stops with the tests',
    );
  }
  const r = spawnSync(workerdWrapper(binary), ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(
      `workerd (${binary}) does not run on this machine (exit ${r.status}): ${(r.stderr || r.stdout || String(r.error)).slice(0, 2000)}`,
    );
  }
  return r.stdout.trim();
}

/**
 * Bundles a Worker module with esbuild from the project's sources (the `source` export
 * condition, so `cloudmom/cloudflare` is `adapters/cloudflare/index.ts`). No `node:` module is
 * allowed unless `nodeCompat` (the Workers `nodejs_compat` flag provides them). Returns the
 * bundle's path and its size.
 */
export async function bundleWorker(
  entry: string,
  name: string,
  options: { nodeCompat?: boolean; minify?: boolean } = {},
): Promise<{ path: string; bytes: number }> {
  const outfile = join(cacheDir('cloudflare'), `${name}.mjs`);
  const result = await build({
    entryPoints: [join(ROOT, entry)],
    outfile,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: options.nodeCompat ? 'node' : 'neutral',
    conditions: ['source', 'workerd', 'worker', 'import'],
    mainFields: ['module', 'main'],
    external: options.nodeCompat ? ['node:*', 'cloudflare:*'] : ['cloudflare:*'],
    minify: options.minify ?? false,
    logLevel: 'silent',
    metafile: true,
  });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  return { path: outfile, bytes };
}

/**
 * Starts a Miniflare instance (workerd) on 127.0.0.1 with the given options; dispose it when
 * done. Defaults: ES modules, {@link COMPATIBILITY_DATE}, workerd's logs passed through only
 * when `CLOUDMOM_WORKERD_LOGS` is set.
 */
export async function startWorker(options: MiniflareOptions): Promise<Miniflare> {
  process.env.MINIFLARE_WORKERD_PATH = workerdWrapper();
  const mf = new Miniflare({
    modules: true,
    compatibilityDate: COMPATIBILITY_DATE,
    host: '127.0.0.1',
    ...(process.env.CLOUDMOM_WORKERD_LOGS ? {} : { handleRuntimeStdio: () => {} }),
    ...options,
  } as MiniflareOptions);
  await mf.ready;
  return mf;
}
