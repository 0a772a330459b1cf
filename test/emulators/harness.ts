/**
 * How every real peer starts in tests (the pattern each platform's `setup.ts` follows):
 *
 * 1. If the environment names an endpoint (`spec.envVar`), use it and start nothing.
 * 2. Else make sure the peer is installed, from its registry, cached under `.cache/<name>`
 *    (ignored by git) so reruns are fast: `spec.install()`.
 * 3. Start it on 127.0.0.x, under `timeout` so an orphan dies by itself, and wait until
 *    `spec.ready()` answers.
 * 4. `stop()` at the end of the run kills it.
 *
 * A missing tool fails with a message naming what is missing and how to provide it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** A free TCP port on `host` (the OS picks one), so peers and benches can run side by side. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error(`no free port on ${host}`)),
      );
    });
  });
}

/** `.cache/<name>` in the repository, created on demand. */
export function cacheDir(name: string): string {
  const dir = join(ROOT, '.cache', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Longest a started peer may live (seconds); it is killed by `timeout` after that. */
export const PEER_LIFETIME_S = 3600;

export interface PeerSpec {
  /** Short name for logs and the cache folder, e.g. "moto". */
  readonly name: string;
  /** Environment variable that, when set, replaces the peer with an existing endpoint. */
  readonly envVar: string;
  /** Endpoint the started peer serves, e.g. "http://127.0.0.1:5000". */
  readonly endpoint: string;
  /** Installs the peer into the cache if needed; idempotent. */
  install?(): Promise<void> | void;
  /** The command that runs the peer in the foreground. */
  command(): { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; cwd?: string };
  /** True once the peer answers at `endpoint`. */
  ready(endpoint: string): Promise<boolean>;
  /** How long to wait for ready. Default 60 s. */
  readonly startTimeoutMs?: number;
}

export interface RunningPeer {
  readonly endpoint: string;
  /** True when this run started the peer (false when the environment supplied it). */
  readonly started: boolean;
  stop(): Promise<void>;
}

/** Uses the endpoint from the environment, or installs, starts and waits for the peer. */
export async function startPeer(spec: PeerSpec): Promise<RunningPeer> {
  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    log(spec.name, `using ${fromEnv} from ${spec.envVar}`);
    if (!(await spec.ready(fromEnv)))
      throw new Error(`${spec.name}: ${spec.envVar}=${fromEnv} does not answer`);
    return { endpoint: fromEnv, started: false, stop: async () => {} };
  }
  const t0 = Date.now();
  await spec.install?.();
  const { cmd, args, env, cwd } = spec.command();
  const child = spawn(
    'timeout',
    ['--signal=TERM', '--kill-after=10', String(PEER_LIFETIME_S), cmd, ...args],
    {
      cwd: cwd ?? ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so stop() kills the peer and its children
    },
  );
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + (spec.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited !== undefined) {
      throw new Error(
        `${spec.name} exited with code ${exited} before answering. Its output:\n${output.join('').slice(-4000)}`,
      );
    }
    if (await spec.ready(spec.endpoint).catch(() => false)) break;
    if (Date.now() > deadline) {
      kill(child);
      throw new Error(
        `${spec.name} did not answer at ${spec.endpoint} within ${spec.startTimeoutMs ?? 60_000} ms. Output:\n${output.join('').slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  log(spec.name, `ready at ${spec.endpoint} in ${Date.now() - t0} ms`);
  return {
    endpoint: spec.endpoint,
    started: true,
    async stop() {
      if (exited !== undefined) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      kill(child);
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}

function kill(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
}

/** True when a TCP connection to host:port opens. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when an HTTP GET answers with any status. */
export async function httpAnswers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs an install step synchronously; on failure throws naming the tool and what to do.
 * @param hint what the user can do instead (e.g. "or set CLOUDMOM_MOTO_ENDPOINT")
 */
export function run(
  cmd: string,
  args: string[],
  hint: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(cmd, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`\`${cmd}\` is not installed, and the test peer needs it: ${hint}`);
  }
  if (r.status !== 0) {
    throw new Error(
      `\`${cmd} ${args.join(' ')}\` failed (exit ${r.status}): ${hint}\n${(r.stderr || r.stdout || '').slice(-4000)}`,
    );
  }
  return r.stdout;
}

/** True when `cmd` is on the PATH. */
export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export function log(name: string, message: string): void {
  process.stderr.write(`[peer ${name}] ${message}\n`);
}

/**
 * A Python command-line tool from PyPI (checkov, cfn-lint, moto[server]...) in its own
 * virtualenv under `.cache/py-<name>`, installed once under a file lock so parallel test
 * projects share it. Returns the path of the venv's `bin/`.
 *
 * @example
 * ```ts
 * const bin = pyTool('checkov', ['checkov==3.2.*']);
 * run(`${bin}/checkov`, ['-d', 'infra/gcp'], 'checkov is installed from PyPI');
 * ```
 */
export function pyTool(name: string, requirements: string[]): string {
  const venv = join(cacheDir('.'), `py-${name}`);
  const stamp = join(venv, `.installed-${requirements.join('+').replace(/[^\w.=+-]/g, '_')}`);
  const python = process.env.PYTHON ?? 'python3';
  const steps = [
    `rm -rf '${venv}'`,
    `${python} -m venv '${venv}'`,
    `'${venv}/bin/pip' install --quiet --disable-pip-version-check ${requirements.map((r) => `'${r}'`).join(' ')}`,
    `touch '${stamp}'`,
  ].join(' && ');
  const script = `test -f '${stamp}' || { ${steps}; }`;
  log(name, `ensuring ${requirements.join(' ')} in ${venv}`);
  run(
    'flock',
    [`${venv}.lock`, 'sh', '-c', script],
    `needs ${python} with venv and pip, and PyPI (pip install ${requirements.join(' ')})`,
  );
  return join(venv, 'bin');
}
