/**
 * Runs a script in a fresh Node process (`--conditions=source`) where `pkg` cannot be
 * resolved, as on a machine that never installed that optional peer, and returns the JSON
 * object the script printed last. Used by the lazy-SDK tests of the adapters.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './emulators/harness.ts';

export function runWithoutPackage(pkg: string, script: string): Record<string, unknown> {
  const hook = `
import { registerHooks } from 'node:module';
registerHooks({
  resolve(specifier, context, next) {
    if (specifier === ${JSON.stringify(pkg)} || specifier.startsWith(${JSON.stringify(`${pkg}/`)}))
      throw Object.assign(new Error("Cannot find module '" + specifier + "'"), { code: 'MODULE_NOT_FOUND' });
    return next(specifier, context);
  },
});
`;
  const out = execFileSync(
    join(ROOT, 'node_modules/.bin/node'),
    ['--conditions=source', '--input-type=module', '-e', hook + script],
    { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!);
}
