/**
 * What the core and the adapter need of workerd, with and without `nodejs_compat`: the
 * globals, the default logger (the core's writes to `process.stderr`), and publish batching
 * (the core's batcher schedules with `setImmediate`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestWorker, testWorker, until } from './helpers.ts';

let plain: TestWorker;
let compat: TestWorker;
const output: string[] = [];

beforeAll(async () => {
  const capture = (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
    for (const s of [stdout, stderr])
      s.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  };
  [plain, compat] = await Promise.all([
    testWorker({ bindings: { DEFAULT_LOGGER: true }, miniflare: { handleRuntimeStdio: capture } }),
    testWorker({
      compatibilityFlags: ['nodejs_compat'],
      bindings: { DEFAULT_LOGGER: true },
      miniflare: { handleRuntimeStdio: capture },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.dispose(), compat?.dispose()]);
});

describe('workerd runtime facts the core relies on', () => {
  it('without nodejs_compat: Web Crypto, encoders, native base64; no process, no setImmediate', async () => {
    expect(await plain.get('/runtime')).toMatchObject({
      core: 'loaded',
      randomUUID: 'function',
      TextEncoder: 'function',
      TextDecoder: 'function',
      queueMicrotask: 'function',
      toBase64: 'function',
      process: 'undefined',
      processStderr: 'undefined',
      setImmediate: 'undefined',
      Buffer: 'undefined',
    });
  });

  it('with nodejs_compat: process.stderr and setImmediate exist', async () => {
    expect(await compat.get('/runtime')).toMatchObject({
      core: 'loaded',
      randomUUID: 'function',
      process: 'object',
      processStderr: 'object',
      setImmediate: 'function',
    });
  });
});

describe('the default logger in workerd', () => {
  it.each([
    ['without nodejs_compat (console)', () => plain],
    ['with nodejs_compat (the core’s, process.stderr)', () => compat],
  ])('%s: a warning is written and the message still settles', async (_name, worker) => {
    const w = worker();
    const r = await w.publish('nobody', 'no-handler-here');
    expect(r.error).toBeUndefined();
    await until('the discard', async () => (await w.get('/stats')).discarded >= 1 || undefined);
    await until(
      'the log line',
      async () => output.join('').includes('no handler for target') || undefined,
    );
    const line = output
      .join('')
      .split('\n')
      .find((l) => l.includes('no handler for target'));
    expect(JSON.parse(line!.slice(line!.indexOf('{')))).toMatchObject({
      level: 'warn',
      logger: 'cloudmom',
      target: 'no-handler-here',
    });
  });
});

describe('publish batching in workerd', () => {
  it('with nodejs_compat: publishes at once share sendBatch calls (≤ 100 messages, ≤ 256 KB)', async () => {
    const before = (await compat.events()).length;
    const r = await compat.publish('z'.repeat(3000), 'record', {}, { copies: 250 });
    expect(r.error).toBeUndefined();
    const sends = (await compat.events())
      .slice(before)
      .filter((e) => e.event === 'sent' && e.queue === 'queue');
    expect(sends.reduce((n, e) => n + e.count, 0)).toBe(250);
    const counts = sends.map((e) => e.count);
    expect(Math.max(...counts)).toBeGreaterThan(1);
    expect(Math.max(...counts)).toBeLessThanOrEqual(84); // 3 KB envelopes: 256 KB / ~3.1 KB
  });

  it('without nodejs_compat: every publish is its own send (the core batcher needs setImmediate)', async () => {
    const before = (await plain.events()).length;
    const r = await plain.publish('z'.repeat(100), 'record', {}, { copies: 20 });
    expect(r.error).toBeUndefined();
    const sends = (await plain.events())
      .slice(before)
      .filter((e) => e.event === 'sent' && e.queue === 'queue');
    expect(sends.map((e) => e.count)).toEqual(Array(20).fill(1));
  });
});
