/**
 * Error names survive minification: a Lambda or Worker bundle is usually minified, which renames
 * classes, and `name` is what log lines (`errorKind`) and dead-letter descriptions show.
 */
import { join } from 'node:path';
import * as errors from 'cloudmom';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../emulators/harness.ts';

/** Constructor arguments of the errors that take more than a message. */
const ARGS: Record<string, unknown[]> = {
  CloudmomError: ['send-failed', 'x'],
  MessageTooLargeError: [2, 1, 'here'],
  SchemaError: ['x', []],
  RequestTimeoutError: ['c', 1, 't'],
  PublishBatchError: [[{ ok: false, error: new errors.SendError('x') }]],
  KafkaBatchRetryError: [1, 2, [], undefined],
};

describe('error names', () => {
  it('are the class names in a minified bundle, as from source', async () => {
    const out = await build({
      stdin: {
        contents: `export * from ${JSON.stringify(join(ROOT, 'src/errors.ts'))};
export { KafkaBatchRetryError } from ${JSON.stringify(join(ROOT, 'adapters/kafka/entrypoint.ts'))};`,
        resolveDir: ROOT,
        loader: 'ts',
      },
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      conditions: ['source'],
      external: ['@platformatic/kafka', 'cloudmom', 'cloudmom/*'],
      write: false,
      logLevel: 'silent',
    });
    const url = `data:text/javascript;base64,${Buffer.from(out.outputFiles[0]!.text).toString('base64')}`;
    const bundled = (await import(url)) as Record<string, unknown>;
    const classes = Object.entries(bundled).filter(
      ([, v]) =>
        typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error,
    );
    expect(classes.length).toBeGreaterThanOrEqual(13);
    for (const [exported, C] of classes) {
      const Ctor = C as new (...args: unknown[]) => Error;
      const made = new Ctor(...(ARGS[exported] ?? ['x']));
      expect(made.name, exported).toBe(exported);
    }
    // and the same from source
    expect(new errors.DecodeError('x').name).toBe('DecodeError');
    expect(new errors.CloudmomError('send-failed', 'x').name).toBe('CloudmomError');
  });
});
