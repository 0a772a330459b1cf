/**
 * Builds the deployable source archive of the example functions (what `infra/gcp` points
 * Cloud Functions at): `examples/gcp/index.ts` bundled with esbuild into one ESM file with
 * cloudmom inside, `@google-cloud/functions-framework` and `@google-cloud/pubsub` left as
 * dependencies for Cloud Build's `npm install`, and a package.json whose `main` is the bundle.
 *
 * @example
 * ```sh
 * node --conditions=source examples/gcp/package.ts   # → .cache/gcp-function/cloudmom-example.zip
 * gcloud storage cp .cache/gcp-function/cloudmom-example.zip gs://MY_BUCKET/cloudmom-example-$(git rev-parse --short HEAD).zip
 * ```
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const EXTERNAL = ['@google-cloud/functions-framework', '@google-cloud/pubsub'];

/**
 * Bundles and zips the example functions into `outDir`; returns the paths.
 *
 * @example
 * ```ts
 * const { zip } = await packageExample();
 * ```
 */
export async function packageExample(
  outDir = join(ROOT, '.cache/gcp-function'),
): Promise<{ dir: string; bundle: string; zip: string }> {
  const dir = join(outDir, 'source');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const bundle = join(dir, 'index.mjs');
  await build({
    absWorkingDir: ROOT,
    entryPoints: ['examples/gcp/index.ts'],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    conditions: ['source'],
    external: EXTERNAL,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  const dependencies = Object.fromEntries(EXTERNAL.map((d) => [d, root.devDependencies[d]!]));
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify(
      {
        name: 'cloudmom-example-gcp',
        private: true,
        type: 'module',
        main: 'index.mjs',
        engines: { node: '>=22' },
        dependencies,
      },
      null,
      2,
    )}\n`,
  );
  const zip = join(outDir, 'cloudmom-example.zip');
  execFileSync('zip', ['-q', '-X', '-r', zip, '.'], { cwd: dir });
  return { dir, bundle, zip };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { zip } = await packageExample();
  process.stdout.write(`${zip}\n`);
}
