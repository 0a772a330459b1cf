import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// One project per platform so each starts only its own emulator (globalSetup) and can run
// alone: `npx vitest run --project aws`. `npm test` runs them all.
const platform = (name: string, extra: { testTimeout?: number } = {}) => ({
  extends: true as const,
  test: {
    name,
    include: [`test/${name}/**/*.test.ts`, `test/conformance/${name}.test.ts`],
    globalSetup: [`test/emulators/${name}/setup.ts`],
    testTimeout: extra.testTimeout ?? 60_000,
    hookTimeout: 180_000,
  },
});

export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'core',
          include: [
            'test/unit/**/*.test.ts',
            'test/conformance/memory.test.ts',
            'test/examples/**/*.test.ts',
          ],
          testTimeout: 30_000,
        },
      },
      ...['aws', 'gcp', 'azure', 'cloudflare', 'amqp', 'kafka']
        .filter((p) => existsSetup(p))
        .map((p) => platform(p)),
    ],
  },
});

function existsSetup(p: string): boolean {
  return existsSync(`test/emulators/${p}/setup.ts`);
}
