/**
 * cloudmom on Google Cloud Pub/Sub: the {@link PubSubBroker}, the Cloud Functions (2nd gen)
 * CloudEvent entrypoint {@link cloudEventHandler} and the push-subscription entrypoint
 * {@link pushHandler}. Needs the optional peer dependency `@google-cloud/pubsub`, loaded on
 * first use (the first send, `start()`, `request()` or `broker.client`).
 *
 * @example
 * ```ts
 * import * as functions from '@google-cloud/functions-framework';
 * import { PubSubBroker, cloudEventHandler } from 'cloudmom/gcp';
 * const broker = new PubSubBroker({ topic: 'cloudmom', deadLetterTopic: 'cloudmom-dead-letter', replyTopic: 'cloudmom-replies' });
 * broker.add('hello', () => 'Hi there too');
 * functions.cloudEvent('cloudmom', cloudEventHandler(broker));
 * ```
 * @module
 */
export { PubSubBroker, type PubSubBrokerOptions } from './broker.ts';
export {
  type CloudEventHandlerOptions,
  cloudEventHandler,
  MESSAGE_PUBLISHED,
  type PubSubCloudEvent,
  type PubSubPushEnvelope,
  type PubSubPushMessage,
  type PushHandlerOptions,
  pushHandler,
} from './entrypoint.ts';
export { REPLY_KEY, targetFilter } from './wire.ts';
