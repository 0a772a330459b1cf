/**
 * The example app's IaC is generated from examples/topology.ts: the committed files are what
 * the generators give (`npm run infra` regenerates them), and every generator is pure.
 */
import { describe, expect, it } from 'vitest';
import { topology } from '../../examples/topology.ts';
import { exampleFiles, staleFiles } from '../../scripts/infra.ts';
import { InvalidArgumentError } from '../../src/index.ts';
import { GENERATORS, generate } from '../../src/infra/index.ts';

describe('generated IaC of the example app', () => {
  it('matches the committed files (run `npm run infra` after changing the topology)', async () => {
    expect(await staleFiles()).toEqual([]);
  });

  it('is deterministic: two runs give the same bytes, every file ends in a newline', async () => {
    const a = await exampleFiles();
    const b = await exampleFiles();
    expect(b).toEqual(a);
    for (const f of a) expect(f.content.endsWith('\n'), f.path).toBe(true);
    expect(new Set(a.map((f) => f.path)).size).toBe(a.length);
  });

  it('refuses an unknown platform, naming the known ones', () => {
    expect(() => generate('nope', topology)).toThrow(InvalidArgumentError);
    expect(() => generate('nope', topology)).toThrow(/no IaC generator for "nope"/);
  });

  it.each(Object.keys(GENERATORS))('%s: writes relative paths only', (platform) => {
    for (const f of generate(platform, topology))
      expect(f.path, f.path).toMatch(/^(?![/.])(?!.*\.\.)[\w./-]+$/);
  });
});
