/**
 * The README's Cloudflare block is a Worker module (`export default { fetch, queue }`), so it
 * runs where a Worker runs: bundled as written with esbuild (the way wrangler does) and loaded
 * into workerd by Miniflare, with the bindings of infra/cloudflare/wrangler.toml (`QUEUE` →
 * `cloudmom`, consumed by the same Worker; `REPLIES` → `cloudmom-replies`; `DEAD_LETTERS`). A
 * second, tiny Worker consumes `cloudmom-replies` into a KV namespace the test reads. A fetch
 * publishes 'Hello' with `replyTo: 'cloudmom-replies'`; the queue handler runs the block's
 * handler and sends its reply there, with the request's message id as correlation id.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Miniflare } from 'miniflare';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runnableBlock } from '../../scripts/doc-blocks.ts';
import {
  bundleWorker,
  COMPATIBILITY_DATE,
  workerdWrapper,
} from '../emulators/cloudflare/workerd.ts';
import { until } from './helpers.ts';

const block = runnableBlock('cloudflare');

const OBSERVER = `export default {
  async queue(batch, env) {
    for (const m of batch.messages) {
      await env.SEEN.put(m.id, JSON.stringify({ body: m.body, attempts: m.attempts }));
      m.ack();
    }
  },
};`;

const fast = { maxBatchSize: 10, maxBatchTimeout: 0.05 };
let mf: Miniflare | undefined;
afterAll(() => mf?.dispose());

describe('README: Cloudflare', () => {
  it(`README.md:${block.line} runs as written in workerd: fetch publishes, the queue handler replies`, async () => {
    const bundle = await bundleWorker(relative(ROOT, block.path), 'readme-worker');
    process.env.MINIFLARE_WORKERD_PATH = workerdWrapper();
    mf = new Miniflare({
      host: '127.0.0.1',
      ...(process.env.CLOUDMOM_WORKERD_LOGS ? {} : { handleRuntimeStdio: () => {} }),
      workers: [
        {
          name: 'readme',
          modules: true,
          compatibilityDate: COMPATIBILITY_DATE,
          script: readFileSync(bundle.path, 'utf8'),
          queueProducers: {
            QUEUE: { queueName: 'cloudmom' },
            REPLIES: { queueName: 'cloudmom-replies' },
            DEAD_LETTERS: { queueName: 'cloudmom-dead-letter' },
          },
          queueConsumers: { cloudmom: { ...fast, maxRetries: 5 } },
        },
        {
          name: 'observer',
          modules: true,
          compatibilityDate: COMPATIBILITY_DATE,
          script: OBSERVER,
          kvNamespaces: ['SEEN'],
          queueConsumers: { 'cloudmom-replies': fast },
        },
      ],
    });
    await mf.ready;

    const res = await mf.dispatchFetch('http://worker/');
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    expect(typeof id).toBe('string');

    // (Miniflare types KV with workers-types, which this project does not install)
    const kv = (await mf.getKVNamespace('SEEN', 'observer')) as unknown as {
      list(): Promise<{ keys: { name: string }[] }>;
      get(key: string): Promise<string | null>;
    };
    const keys = await until('the reply in cloudmom-replies', async () => (await kv.list()).keys);
    expect(keys).toHaveLength(1);
    const seen = JSON.parse((await kv.get(keys[0]!.name))!) as { body: any; attempts: number };
    // the versioned JSON envelope (docs/cloudflare.md): a reply with the handler's return value
    expect(seen).toEqual({ attempts: 1, body: expect.anything() });
    expect(seen.body).toMatchObject({
      cloudmom: 1,
      attributes: { target: 'reply', correlation_id: id },
      text: 'Hi there too',
    });
  }, 60_000);
});
