/**
 * Extracts the TypeScript blocks of README.md and docs/*.md into `.doc-blocks/`, one module
 * each, for `tsc` to check against the package (test/unit/doc-blocks.test.ts). A block right
 * after a `<!-- fragment -->` line is an excerpt and is not checked. A README block right after
 * `<!-- run: <name> -->` is also run as written, in a child process, against a real peer
 * (`runBlock`; test/<platform>/readme.test.ts).
 *
 * `.doc-blocks/` (git- and biome-ignored) sits in the package itself, not under `.cache/`: a
 * block imports `cloudmom/…` by the package's own name, which Node and tsc resolve from the
 * nearest package.json of the file's real path — in a git worktree `.cache` may be a symlink
 * into another checkout.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');
export const OUT = join(ROOT, '.doc-blocks', 'check');
/** Where `runnableBlock` writes the blocks it runs (one file per name, so projects run apart). */
export const RUN_DIR = join(ROOT, '.doc-blocks', 'run');

export interface Block {
  readonly file: string;
  readonly line: number;
  readonly path: string;
}

/** A README block marked `<!-- run: <name> -->`: its text, as written. */
export interface RunnableBlock {
  readonly name: string;
  /** 1-based line of the block's first line in README.md. */
  readonly line: number;
  readonly text: string;
  /** The block written to `.doc-blocks/run/<name>.ts`, unchanged. */
  readonly path: string;
}

/** The fenced `ts` blocks of a Markdown text, with the two lines before each fence. */
function fencedBlocks(text: string): { start: number; body: string; before: string }[] {
  const lines = text.split('\n');
  const out: { start: number; body: string; before: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```ts\s*$/.test(lines[i]!)) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end]!.startsWith('```')) end++;
    out.push({
      start,
      body: lines.slice(start, end).join('\n'),
      before: `${lines[i - 2] ?? ''}\n${lines[i - 1] ?? ''}`,
    });
    i = end;
  }
  return out;
}

/** Names of the README blocks marked to run, in README order. */
export function runnableNames(): string[] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return fencedBlocks(text).flatMap((b) => {
    const m = /<!--\s*run:\s*([\w-]+)\s*-->/.exec(b.before);
    return m ? [m[1]!] : [];
  });
}

/** The README block marked `<!-- run: name -->`, written as is to `.doc-blocks/run/<name>.ts`. */
export function runnableBlock(name: string): RunnableBlock {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = new RegExp(`<!--\\s*run:\\s*${name}\\s*-->`);
  const found = fencedBlocks(text).filter((b) => marker.test(b.before));
  if (found.length !== 1)
    throw new Error(`README.md has ${found.length} blocks marked <!-- run: ${name} --> (want 1)`);
  const b = found[0]!;
  mkdirSync(RUN_DIR, { recursive: true });
  const path = join(RUN_DIR, `${name}.ts`);
  writeFileSync(path, `${b.body}\n`);
  return { name, line: b.start + 1, text: b.body, path };
}

export interface BlockRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs a module with Node 22 (`node --conditions=source`, as `npx node` would) in a child
 * process with `env` added to this process's environment; killed after `timeoutMs`.
 */
export function runBlock(
  path: string,
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
): Promise<BlockRun> {
  const t0 = Date.now();
  const child = spawn(join(ROOT, 'node_modules/.bin/node'), ['--conditions=source', path], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }),
    );
  });
}

export function extractBlocks(): { blocks: Block[]; fragments: number } {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const files = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const blocks: Block[] = [];
  let fragments = 0;
  for (const file of files) {
    for (const { start, body, before } of fencedBlocks(readFileSync(join(ROOT, file), 'utf8'))) {
      if (/<!--\s*fragment\s*-->/.test(before)) {
        fragments++;
        continue;
      }
      const name = `${file.replace(/[/.]/g, '_')}_${start}.ts`;
      writeFileSync(join(OUT, name), `// ${file}:${start}\n${body}\nexport {};\n`);
      blocks.push({ file, line: start, path: join(OUT, name) });
    }
  }
  // `./app.ts` in a block is the reader's own app: here, the example app
  writeFileSync(join(OUT, 'app.ts'), "export * from '../../examples/app.ts';\n");
  // `./topology.ts` is the reader's topology: here, the example app's
  writeFileSync(join(OUT, 'topology.ts'), "export * from '../../examples/topology.ts';\n");
  writeFileSync(
    join(OUT, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: '../../tsconfig.json',
        compilerOptions: {
          noEmit: true,
          noUnusedLocals: false,
          noUnusedParameters: false,
          rootDir: '../..',
          types: ['node'],
        },
        include: ['./*.ts', '../../test/doc-blocks/globals.d.ts'],
      },
      null,
      2,
    ),
  );
  return { blocks, fragments };
}

if (import.meta.main) {
  const { blocks, fragments } = extractBlocks();
  console.log(`${blocks.length} blocks, ${fragments} fragments → ${OUT}`);
}
