/**
 * Extracts the TypeScript blocks of README.md and docs/*.md into `.cache/doc-blocks/`, one
 * module each, for `tsc` to check against the package (test/unit/doc-blocks.test.ts). A block
 * right after a `<!-- fragment -->` line is an excerpt and is not checked.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');
export const OUT = join(ROOT, '.cache', 'doc-blocks');

export interface Block {
  readonly file: string;
  readonly line: number;
  readonly path: string;
}

export function extractBlocks(): { blocks: Block[]; fragments: number } {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const files = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const blocks: Block[] = [];
  let fragments = 0;
  for (const file of files) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!/^```ts\s*$/.test(lines[i]!)) continue;
      const fragment =
        /<!--\s*fragment\s*-->/.test(lines[i - 1] ?? '') ||
        /<!--\s*fragment\s*-->/.test(lines[i - 2] ?? '');
      const start = i + 1;
      let end = start;
      while (end < lines.length && !lines[end]!.startsWith('```')) end++;
      if (fragment) fragments++;
      else {
        const name = `${file.replace(/[/.]/g, '_')}_${start}.ts`;
        const body = lines.slice(start, end).join('\n');
        writeFileSync(join(OUT, name), `// ${file}:${start}\n${body}\nexport {};\n`);
        blocks.push({ file, line: start, path: join(OUT, name) });
      }
      i = end;
    }
  }
  // `./app.ts` in a block is the reader's own app: here, the example app
  writeFileSync(join(OUT, 'app.ts'), "export * from '../../examples/app.ts';\n");
  // `./topology.ts` is the reader's topology: here, the example app's
  writeFileSync(join(OUT, 'topology.ts'), "export * from '../../examples/topology.ts';\n");
  writeFileSync(
    join(OUT, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: '../../tsconfig.json',
        compilerOptions: {
          noEmit: true,
          noUnusedLocals: false,
          noUnusedParameters: false,
          rootDir: '../..',
          types: ['node'],
        },
        include: ['./*.ts', '../../test/doc-blocks/globals.d.ts'],
      },
      null,
      2,
    ),
  );
  return { blocks, fragments };
}

if (import.meta.main) {
  const { blocks, fragments } = extractBlocks();
  console.log(`${blocks.length} blocks, ${fragments} fragments → ${OUT}`);
}
