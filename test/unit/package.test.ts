/**
 * The package as users get it: `exports` agrees with the build, and each subpath's built
 * output imports only its own cloud SDK (a Lambda importing cloudmom/aws bundles no Azure or
 * Google code; the core imports none).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const SDKS: Record<string, RegExp> = {
  '.': /^$/, // the core: no third-party import at all
  './aws': /^@aws-sdk\/|^@middy\//,
  './aws/lambda': /^@aws-sdk\/|^@middy\//, // the function-side entry of the AWS adapter
  './azure': /^@azure\//,
  './gcp': /^@google-cloud\//,
  './cloudflare': /^$/,
  './amqp': /^rabbitmq-client$/,
  './kafka': /^@platformatic\/kafka$/,
  './infra': /^$/, // the IaC generators: pure functions, no dependency
};
/** Subpaths that are not an adapter folder's index: the core's, and an adapter's extra entries. */
const CORE_SUBPATHS = ['.', './infra', './aws/lambda'];

/** Every bare import reachable from a built file, following relative imports. */
function bareImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(
      /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
    )) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) walk(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) bare.add(spec);
    }
  };
  walk(entry);
  return bare;
}

describe('package', () => {
  beforeAll(() => {
    execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  }, 120_000);

  it('has an export for every adapter folder and a build output for every export', () => {
    const adapters = readdirSync(join(ROOT, 'adapters')).filter((d) =>
      existsSync(join(ROOT, 'adapters', d, 'index.ts')),
    );
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
    expect(subpaths.sort()).toEqual([...CORE_SUBPATHS, ...adapters.map((a) => `./${a}`)].sort());
    for (const key of subpaths) {
      const e = pkg.exports[key];
      expect(existsSync(join(ROOT, e.default)), `${key} → ${e.default}`).toBe(true);
      expect(existsSync(join(ROOT, e.types)), `${key} → ${e.types}`).toBe(true);
      expect(existsSync(join(ROOT, e.source)), `${key} → ${e.source}`).toBe(true);
    }
  });

  it('imports only its own SDK from each subpath, and none from the core', () => {
    for (const [key, e] of Object.entries<{ default: string }>(pkg.exports)) {
      if (key === './package.json') continue;
      const allowed = SDKS[key];
      expect(allowed, `no SDK rule for ${key}`).toBeDefined();
      for (const spec of bareImports(join(ROOT, e.default))) {
        expect(allowed!.test(spec) && allowed!.source !== '^$', `${key} imports ${spec}`).toBe(
          true,
        );
      }
    }
  });

  it('declares cloud SDKs as optional peer dependencies, never as dependencies', () => {
    // The only runtime dependency is the CLI's progress bar; the library subpaths never load it.
    expect(Object.keys(pkg.dependencies ?? {})).toEqual(['cli-progress']);
    for (const name of Object.keys(pkg.peerDependencies ?? {})) {
      expect(pkg.peerDependenciesMeta?.[name]?.optional, `${name} optional`).toBe(true);
    }
  });

  it('runs the built package from plain Node: the root export works without the source condition', () => {
    const out = execFileSync(
      join(ROOT, 'node_modules/.bin/node'),
      [
        '--input-type=module',
        '-e',
        "import { MemoryBroker } from 'cloudmom'; const b = new MemoryBroker({ logger: false }); b.add('t', () => 'ok'); await b.start(); console.log((await b.request(1, 't')).body); await b.stop();",
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(out.trim()).toBe('ok');
  });
});
