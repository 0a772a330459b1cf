/**
 * The deployable archive (examples/gcp/package.ts): one ESM bundle plus a package.json with
 * only the Google packages as dependencies; the bundle loads into the real functions-framework
 * and answers request() end to end on pstest.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packageExample } from '../../examples/gcp/package.ts';
import { emulatorClient, PROJECT, topology } from './fixture.ts';
import { bridge, serveFunction } from './http.ts';

const client = emulatorClient();
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe('examples/gcp source archive', () => {
  it('bundles cloudmom, depends on the Google packages only, and serves request() from the bundle', async () => {
    const { bundle, dir } = await packageExample();
    const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'));
    expect(pkg.main).toBe('index.mjs');
    expect(Object.keys(pkg.dependencies).sort()).toEqual([
      '@google-cloud/functions-framework',
      '@google-cloud/pubsub',
    ]);
    const code = readFileSync(bundle, 'utf8');
    expect(code).not.toMatch(/@aws-sdk|@azure|from "cloudmom/);

    const t = await topology(client);
    cleanups.push(() => t.cleanup());
    Object.assign(process.env, {
      GOOGLE_CLOUD_PROJECT: PROJECT,
      CLOUDMOM_TOPIC: t.topic,
      CLOUDMOM_DEAD_LETTER_TOPIC: t.deadLetterTopic,
      CLOUDMOM_REPLY_TOPIC: t.replyTopic,
    });
    const loaded = (await import(pathToFileURL(bundle).href)) as {
      brokers: Record<string, { stop(): Promise<void> }>;
    };
    cleanups.push(() => Promise.all(Object.values(loaded.brokers).map((b) => b.stop())));
    // the greeter's function, as infra/gcp deploys it (entry point = service name, push)
    const fn = await serveFunction('greeter');
    cleanups.push(() => fn.close());
    const b = bridge(client, t.subscription, fn.url, 'push');
    cleanups.push(() => b.stop());
    const requester = t.broker({ subscription: undefined, logger: false });
    cleanups.push(() => requester.stop());
    expect((await requester.request('Hello World!', 'hello')).body).toBe('Hi there too');
  });
});
