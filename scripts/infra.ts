/**
 * Generates the example app's IaC from `examples/topology.ts` with the generators of
 * `cloudmom/infra`: `npm run infra` writes the files, `npm run infra -- --check` lists the
 * committed files that differ from what the topology gives and exits 1
 * (test/unit/infra.test.ts runs the check).
 *
 * It writes the example's AsyncAPI document too (`docs/asyncapi.json`, from `asyncapi()`).
 *
 * Each platform's deploy options for the example (function handler paths, runtimes…) are the
 * `deploy` export of `examples/<platform>/deploy.ts`, when that file exists.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as z from 'zod/mini';
import { topology } from '../examples/topology.ts';
import { GENERATORS, type GeneratedFile, generate, generateAsyncapi } from '../src/infra/index.ts';

export const ROOT = join(import.meta.dirname, '..');

/** Where each platform's files go, relative to the repository root. */
export const OUT_DIRS: Readonly<Record<string, string>> = {
  aws: '.',
  azure: 'infra/azure',
  gcp: 'infra/gcp',
  cloudflare: 'infra/cloudflare',
  amqp: 'infra/amqp',
  kafka: 'infra/kafka',
};

/** The example's schemas (zod/mini) as JSON Schema draft-07, the body a publisher sends. */
function exampleJsonSchema(schema: unknown): Record<string, unknown> {
  return z.toJSONSchema(schema as z.ZodMiniType, { target: 'draft-07', io: 'input' }) as Record<
    string,
    unknown
  >;
}

/** Every generated file of the example app, with its path from the repository root. */
export async function exampleFiles(): Promise<GeneratedFile[]> {
  const out: GeneratedFile[] = [];
  for (const platform of Object.keys(GENERATORS)) {
    const deployFile = join(ROOT, 'examples', platform, 'deploy.ts');
    const options = existsSync(deployFile)
      ? ((await import(pathToFileURL(deployFile).href)) as { deploy?: object }).deploy
      : undefined;
    const dir = OUT_DIRS[platform] ?? `infra/${platform}`;
    for (const file of generate(platform, topology, options))
      out.push({ path: dir === '.' ? file.path : `${dir}/${file.path}`, content: file.content });
  }
  // the AsyncAPI document, the targets' zod schemas as JSON Schema (zod/mini has no
  // Standard JSON Schema of its own; z.toJSONSchema converts them)
  for (const file of generateAsyncapi(topology, { jsonSchema: exampleJsonSchema }))
    out.push({ path: `docs/${file.path}`, content: file.content });
  return out;
}

/** The generated files whose committed copy is missing or differs. */
export async function staleFiles(): Promise<string[]> {
  const stale: string[] = [];
  for (const file of await exampleFiles()) {
    const path = join(ROOT, file.path);
    if (!existsSync(path) || readFileSync(path, 'utf8') !== file.content) stale.push(file.path);
  }
  return stale;
}

if (import.meta.main) {
  if (process.argv.includes('--check')) {
    const stale = await staleFiles();
    for (const path of stale) console.error(`stale: ${path} (run npm run infra)`);
    process.exitCode = stale.length === 0 ? 0 : 1;
  } else {
    for (const file of await exampleFiles()) {
      const path = join(ROOT, file.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, file.content);
      console.log(`wrote ${file.path}`);
    }
  }
}
