/**
 * Every TypeScript block of README.md and docs/*.md type-checks against the package (strict),
 * with the shared context of test/doc-blocks/globals.d.ts; blocks after `<!-- fragment -->`
 * are excerpts and are skipped (they are counted, and kept few). The README's blocks marked
 * `<!-- run: <name> -->` also run as written: "The API in short" here on MemoryBroker, each
 * platform's in test/<platform>/readme.test.ts against its peer.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  extractBlocks,
  OUT,
  ROOT,
  runBlock,
  runnableBlock,
  runnableNames,
} from '../../scripts/doc-blocks.ts';

const PLATFORMS = ['aws', 'gcp', 'azure', 'cloudflare', 'amqp', 'kafka'];

describe('README blocks that run', () => {
  it('the API in short and every platform section are marked to run, each with its test', () => {
    expect([...runnableNames()].sort()).toEqual(['memory', ...PLATFORMS].sort());
    for (const p of PLATFORMS)
      expect(existsSync(join(ROOT, `test/${p}/readme.test.ts`)), p).toBe(true);
  });

  const block = runnableBlock('memory');
  it(`README.md:${block.line} (the API in short) runs as written on MemoryBroker and exits`, async () => {
    const run = await runBlock(block.path, { CLOUDMOM_LOG_LEVEL: undefined }, 20_000);
    expect(run.code, `exit ${run.code} ${run.signal ?? ''}\n${run.stderr}`).toBe(0);
    // handlers run concurrently with the publishing code: the lines, in any order
    expect(run.stdout.split('\n').sort()).toEqual(
      [
        'Received Hello World! 1',
        'audit { id: 7 }',
        'Received hi 1',
        'audit { id: 8 }',
        'Sent 2 in one call',
        'Reply { q: 1, lat: 48.2, lon: 16.4 }',
        '',
      ].sort(),
    );
    // the two targets with no handler are discarded with a log line each, no body in it
    const logs = run.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { message: string; target: string });
    expect(logs.map((l) => l.target).sort()).toEqual(['blobs', 'order-results']);
  });
});

describe('code blocks in the documentation', () => {
  it('type-check against the package', () => {
    const { blocks, fragments } = extractBlocks();
    expect(blocks.length).toBeGreaterThan(20);
    expect(fragments).toBeLessThanOrEqual(3);
    const r = spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(OUT, 'tsconfig.json')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    // only the blocks' own errors (a dev dependency's shipped sources may not be strict)
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('.doc-blocks/check/'));
    const where = errors.map((l) => {
      const name = l.slice('.doc-blocks/check/'.length).split('(')[0]!;
      const block = blocks.find((b) => b.path.endsWith(name));
      return block ? `${block.file}:${block.line + 1}: ${l.split(': ').slice(1).join(': ')}` : l;
    });
    expect(where).toEqual([]);
  }, 120_000);
});
