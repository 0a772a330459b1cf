/**
 * The `cloudmom` bin as users run it, for the CLI tests: built once per test file with the
 * package's own build (`tsc -p tsconfig.build.json`) into a folder of its own under `.cache/`
 * (so parallel projects never share one), and run as a subprocess with Node 22.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './emulators/harness.ts';

export interface BuiltCli {
  /** The built `dist/src/cli/main.js` (package.json `bin`). */
  readonly bin: string;
  /** How long the build took, ms. */
  readonly buildMs: number;
  remove(): void;
}

/** Builds the package into `.cache/cli-bin/<name>-<pid>` and answers the bin's path. */
export async function buildCli(name: string): Promise<BuiltCli> {
  const out = join(ROOT, '.cache', 'cli-bin', `${name}-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const t0 = Date.now();
  await promisify(execFile)(
    join(ROOT, 'node_modules/.bin/tsc'),
    [
      '-p',
      'tsconfig.build.json',
      '--outDir',
      out,
      '--declaration',
      'false',
      '--declarationMap',
      'false',
      '--sourceMap',
      'false',
    ],
    { cwd: ROOT },
  );
  return {
    bin: join(out, 'src/cli/main.js'),
    buildMs: Date.now() - t0,
    remove: () => rmSync(out, { recursive: true, force: true }),
  };
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Called with the child once it runs (to kill it midway). */
  readonly onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

/** Runs the bin with `args`; resolves when it exits (killed after `timeoutMs`, default 110 s). */
export function runCli(bin: string, args: readonly string[], o: RunOptions = {}): Promise<CliRun> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...o.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 110_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        ms: Date.now() - t0,
      });
    });
    child.stdin.end(o.input ?? '');
    o.onSpawn?.(child);
  });
}
