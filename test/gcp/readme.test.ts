/**
 * The README's Google Cloud block, run as written (`node --conditions=source`, a child process)
 * against pstest: the client finds it through `PUBSUB_EMULATOR_HOST`, in a project of its own
 * (`GOOGLE_CLOUD_PROJECT`) so the block's names (`cloudmom`, `cloudmom-sub`...) meet no other
 * test's. The test creates the topics and subscription the block names. The block's function
 * lines (`functions.cloudEvent(...)`, `pushHandler(broker)`) register and build the handlers,
 * not invoked here: the entrypoints run against pstest in entrypoints.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runBlock, runnableBlock } from '../../scripts/doc-blocks.ts';

const host = inject('pubsubEmulatorHost');
const project = `readme-${randomUUID().slice(0, 8)}`;
const client = new PubSub({ projectId: project, apiEndpoint: host });
afterAll(() => client.close());
const block = runnableBlock('gcp');

describe('README: Google Cloud', () => {
  it(`README.md:${block.line} runs as written against pstest: the reply arrives, it exits`, async () => {
    const names = ['cloudmom', 'cloudmom-dead-letter', 'cloudmom-replies'];
    await Promise.all(names.map((t) => client.createTopic(t)));
    await client.createSubscription('cloudmom', 'cloudmom-sub', {
      deadLetterPolicy: {
        deadLetterTopic: `projects/${project}/topics/cloudmom-dead-letter`,
        maxDeliveryAttempts: 5,
      },
      enableMessageOrdering: true,
    });

    const run = await runBlock(block.path, {
      PUBSUB_EMULATOR_HOST: host,
      GOOGLE_CLOUD_PROJECT: project,
      METADATA_SERVER_DETECTION: 'none',
    });
    expect(run.code, `exit ${run.code} ${run.signal ?? ''}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toBe('Hi there too\n');

    // the request created its reply subscription and stop() deleted it
    const [subscriptions] = await client.getSubscriptions();
    expect(subscriptions.map((s) => s.name.split('/').pop())).toEqual(['cloudmom-sub']);
  }, 90_000);
});
