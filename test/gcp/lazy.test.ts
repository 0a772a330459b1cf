/**
 * `@google-cloud/pubsub` is loaded on first use: in a Node process where it cannot be
 * resolved, `cloudmom/gcp` imports, a broker is constructed, an entrypoint dispatches a
 * message whose handler sends nothing, and only the first send fails — with a typed error
 * naming the package to install.
 */
import { describe, expect, it } from 'vitest';
import { runWithoutPackage } from '../without-package.ts';

const SCRIPT = `
const { PubSubBroker, cloudEventHandler } = await import('cloudmom/gcp');
const broker = new PubSubBroker({ topic: 't', projectId: 'p', logger: false });
let handled = 0;
broker.add('quiet', () => { handled++; });
await cloudEventHandler(broker)({
  type: 'google.cloud.pubsub.topic.v1.messagePublished',
  data: { message: { data: Buffer.from('"x"').toString('base64'), attributes: { target: 'quiet', content_type: 'application/json' }, messageId: '1' } },
});
const err = await broker.publish('x', 'y').catch((e) => e);
await broker.stop();
console.log(JSON.stringify({ handled, name: err?.name, code: err?.code, message: err?.message }));
`;

describe('the Pub/Sub SDK is loaded lazily', () => {
  it('cloudmom/gcp imports, constructs and dispatches without @google-cloud/pubsub; the first send says what to install', () => {
    const result = runWithoutPackage('@google-cloud/pubsub', SCRIPT);
    expect(result).toMatchObject({ handled: 1, name: 'InvalidArgumentError' });
    expect(result.message).toMatch(/npm install @google-cloud\/pubsub/);
  });
});
