import { readFileSync } from 'node:fs';
import type { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorker } from '../emulators/cloudflare/workerd.ts';

let plain: Miniflare;
let compat: Miniflare;

beforeAll(async () => {
  const script = readFileSync(inject('cloudflareWorkerBundle'), 'utf8');
  [plain, compat] = await Promise.all([
    startWorker({ script }),
    startWorker({ script, compatibilityFlags: ['nodejs_compat'] }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.dispose(), compat?.dispose()]);
});

describe('workerd runtime facts the core relies on', () => {
  it('without nodejs_compat: Web Crypto and encoders, no process, no setImmediate', async () => {
    const facts = await (await plain.dispatchFetch('http://worker/runtime')).json();
    expect(facts).toMatchObject({
      core: 'loaded',
      randomUUID: 'function',
      TextEncoder: 'function',
      TextDecoder: 'function',
      queueMicrotask: 'function',
      process: 'undefined',
      processStderr: 'undefined',
      setImmediate: 'undefined',
      Buffer: 'undefined',
    });
  });

  it('with nodejs_compat: process.stderr and setImmediate exist', async () => {
    const facts = await (await compat.dispatchFetch('http://worker/runtime')).json();
    expect(facts).toMatchObject({
      core: 'loaded',
      randomUUID: 'function',
      process: 'object',
      processStderr: 'object',
      setImmediate: 'function',
    });
  });
});
