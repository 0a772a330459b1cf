// Bundles the Lambda entrypoint (examples/aws/handler.ts) with esbuild, as Lambda runs it:
// one ESM file for Node 22, the AWS SDK v3 left external (the nodejs22.x runtime ships it).
//
// serverless.yml calls this through `${file(./infra/aws/bundle.cjs):handler}` while it
// resolves its variables, so `osls package` and `osls deploy` always ship a fresh bundle,
// offline and without a plugin. It answers the handler string for the functions.
'use strict';

const { buildSync } = require('esbuild');
const { mkdirSync, renameSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

const ROOT = join(__dirname, '..', '..');
/** Folder of the bundle, relative to the service directory (what the zip contains). */
const OUT_DIR = 'examples/aws/dist';

let built = false;

/** Builds once per process; returns the Lambda handler string `<file without extension>.handler`. */
function bundle() {
  if (!built) {
    const result = buildSync({
      absWorkingDir: ROOT,
      entryPoints: ['examples/aws/handler.ts'],
      outfile: `${OUT_DIR}/handler.mjs`,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      // Resolve `cloudmom` and `cloudmom/aws` to their TypeScript sources (package exports).
      conditions: ['source'],
      // The Lambda runtime provides the AWS SDK v3; bundling it would only grow cold starts.
      external: ['@aws-sdk/*', '@smithy/*'],
      // Some dependencies are CommonJS and call require() on Node built-ins.
      banner: {
        js: "import { createRequire as __cloudmomCreateRequire } from 'node:module'; const require = __cloudmomCreateRequire(import.meta.url);",
      },
      minify: true,
      keepNames: true,
      legalComments: 'none',
      logLevel: 'warning',
      write: false,
    });
    // Write each file atomically: several osls runs (the tests run in parallel) may bundle
    // at once while another one zips.
    for (const file of result.outputFiles) {
      mkdirSync(dirname(file.path), { recursive: true });
      const tmp = `${file.path}.${process.pid}.tmp`;
      writeFileSync(tmp, file.contents);
      renameSync(tmp, file.path);
    }
    built = true;
  }
  return `${OUT_DIR}/handler.handler`;
}

module.exports = { handler: bundle, outDir: OUT_DIR };
