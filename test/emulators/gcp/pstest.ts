/**
 * pstest — Google's fake Pub/Sub server from `cloud.google.com/go/pubsub/v2/pstest` — behind
 * the tiny Go main in `./pstest/`, built with the machine's Go into `.cache/pstest/` (rebuilt
 * only when `main.go`, `go.mod` or `go.sum` change) and served on 127.0.0.1.
 *
 * `PUBSUB_EMULATOR_HOST` from the environment (e.g. the official `gcloud beta emulators
 * pubsub` emulator) replaces it. Used by the `gcp` test project's global setup and by
 * `bench/gcp.bench.ts`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cacheDir,
  freePort,
  have,
  portOpen,
  ROOT,
  type RunningPeer,
  run,
  startPeer,
} from '../harness.ts';

const SOURCE = join(ROOT, 'test/emulators/gcp/pstest');

/**
 * Builds the Go main in `source` (a folder with main.go, go.mod, go.sum) into
 * `.cache/<name>/<name>-<hash of the sources>` unless that binary exists; returns its path.
 * Modules come from the Go module proxy into the default module cache (~/go/pkg/mod), shared
 * across clones; `-mod=mod` and the committed go.sum make it work from an empty cache.
 */
export function goBuild(source: string, name: string): string {
  const hash = createHash('sha256');
  for (const f of readdirSync(source).sort())
    if (/\.go$|^go\.(mod|sum)$/.test(f)) hash.update(f).update(readFileSync(join(source, f)));
  const dir = cacheDir(name);
  const binary = join(dir, `${name}-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(binary)) return binary;
  if (!have('go'))
    throw new Error(
      `${name} needs Go (https://go.dev/dl/) to build${name === 'pstest' ? '; or set PUBSUB_EMULATOR_HOST to a running Pub/Sub emulator' : ''}`,
    );
  const tmp = `${binary}.tmp-${process.pid}`;
  // flock: the test project and the bench may build at once.
  run(
    'flock',
    [
      join(dir, 'build.lock'),
      'sh',
      '-c',
      `test -f '${binary}' || { go build -o '${tmp}' . && mv '${tmp}' '${binary}'; }`,
    ],
    `${name} is built with \`go build\` from the Go module proxy`,
    { cwd: source, env: { GOFLAGS: '-mod=mod', CGO_ENABLED: '0' } },
  );
  return binary;
}

/** Builds the pstest binary if the cached one is missing or stale; returns its path. */
export function buildPstest(): string {
  return goBuild(SOURCE, 'pstest');
}

/**
 * Starts pstest on 127.0.0.1 (a free port unless given), or uses `PUBSUB_EMULATOR_HOST`.
 * The endpoint is `host:port`, as `PUBSUB_EMULATOR_HOST` takes it.
 */
export async function startPstest(port?: number): Promise<RunningPeer> {
  const p = port ?? (process.env.PUBSUB_EMULATOR_HOST ? 0 : await freePort());
  return startPeer({
    name: 'pstest',
    envVar: 'PUBSUB_EMULATOR_HOST',
    endpoint: `127.0.0.1:${p}`,
    install: () => {
      buildPstest();
    },
    command: () => ({ cmd: buildPstest(), args: ['-addr', `127.0.0.1:${p}`] }),
    ready: (endpoint) => {
      const i = endpoint.lastIndexOf(':');
      return portOpen(endpoint.slice(0, i), Number(endpoint.slice(i + 1)));
    },
    startTimeoutMs: 30_000,
  });
}
