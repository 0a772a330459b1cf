/**
 * The example app on Google Cloud: the handlers of `examples/app.ts` behind two Cloud
 * Functions (2nd gen) entrypoints, which `infra/gcp` deploys.
 *
 * - `cloudmom` — CloudEvent function for the Eventarc Pub/Sub trigger on the app topic
 *   (targets hello, sum, flaky; deploy with retries enabled).
 * - `cloudmomPush` — HTTP function behind a push subscription filtered on `target = "audit"`,
 *   whose dead-letter policy gives `deliveryAttempt`.
 *
 * Configuration comes from the environment: `GOOGLE_CLOUD_PROJECT`, `CLOUDMOM_TOPIC`,
 * `CLOUDMOM_DEAD_LETTER_TOPIC`, `CLOUDMOM_REPLY_TOPIC` (defaults: cloudmom,
 * cloudmom-dead-letter, cloudmom-replies).
 *
 * @example
 * ```sh
 * npx functions-framework --source=dist/examples/gcp/index.js --target=cloudmom --signature-type=cloudevent
 * ```
 * @module
 */
import * as functions from '@google-cloud/functions-framework';
import { cloudEventHandler, PubSubBroker, pushHandler } from 'cloudmom/gcp';
import { registerExample } from '../app.ts';

/**
 * The broker both functions share: publishes replies and dead letters; no pull consumer.
 *
 * @example
 * ```ts
 * await broker.publish({ numbers: [1, 2] }, 'sum');
 * ```
 */
export const broker: PubSubBroker = registerExample(
  new PubSubBroker({
    topic: process.env.CLOUDMOM_TOPIC ?? 'cloudmom',
    deadLetterTopic: process.env.CLOUDMOM_DEAD_LETTER_TOPIC ?? 'cloudmom-dead-letter',
    replyTopic: process.env.CLOUDMOM_REPLY_TOPIC ?? 'cloudmom-replies',
  }),
);

functions.cloudEvent('cloudmom', cloudEventHandler(broker));
functions.http('cloudmomPush', pushHandler(broker));
