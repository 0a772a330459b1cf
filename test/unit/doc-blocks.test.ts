/**
 * Every TypeScript block of README.md and docs/*.md type-checks against the package (strict),
 * with the shared context of test/doc-blocks/globals.d.ts; blocks after `<!-- fragment -->`
 * are excerpts and are skipped (they are counted, and kept few).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractBlocks, OUT, ROOT } from '../../scripts/doc-blocks.ts';

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
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('.cache/doc-blocks/'));
    const where = errors.map((l) => {
      const name = l.slice('.cache/doc-blocks/'.length).split('(')[0]!;
      const block = blocks.find((b) => b.path.endsWith(name));
      return block ? `${block.file}:${block.line + 1}: ${l.split(': ').slice(1).join(': ')}` : l;
    });
    expect(where).toEqual([]);
  }, 120_000);
});
