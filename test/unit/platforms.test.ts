/**
 * docs/platforms.md is generated from the brokers' declared capabilities
 * (scripts/platforms.ts); this fails when the committed page and the code disagree.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderPlatforms } from '../../scripts/platforms.ts';

describe('docs/platforms.md', () => {
  it('is what the brokers declare (regenerate with npm run docs:platforms)', async () => {
    const committed = readFileSync(join(import.meta.dirname, '../../docs/platforms.md'), 'utf8');
    expect(committed).toBe(await renderPlatforms());
  });
});
