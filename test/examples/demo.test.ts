/** `npm start` keeps doing what the README says: the trace, the dead letter, exit 0, quickly. */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

it('npm start prints the demo trace and exits 0 within a few seconds', () => {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--conditions=source', 'examples/demo.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.status, r.stderr).toBe(0);
  expect(Date.now() - t0).toBeLessThan(10_000);
  expect(r.stdout).toContain('greetings ← reply "Hi there too" (correlation c-1)');
  expect(r.stdout).toContain('request  ← reply "Hi there too"');
  expect(r.stdout).toContain('request  ← reply {"sum":10}');
  expect(r.stdout).toMatch(/dead-letter queue: flaky \{"job":42\}/);
  expect(r.stdout).toMatch(
    /reason handler-failed: Error: downstream service unavailable \(delivery 3 of 3\)/,
  );
});
