/**
 * The example app on Google Cloud: the handlers of `examples/app.ts` behind one Cloud Function
 * (2nd gen, HTTP) per service of `examples/topology.ts`, which `infra/gcp` (generated from the
 * topology) deploys behind that service's push subscription — filtered on its targets, with a
 * dead-letter policy that gives `deliveryAttempt`. Each function is registered under the
 * service's name (its entry point) and serves with `pushHandler`.
 *
 * Why push and not an Eventarc trigger (`cloudEventHandler`): an Eventarc Pub/Sub trigger makes
 * its own unfiltered subscription, so with several services on one topic every function would
 * get every service's messages; a push subscription carries the service's filter, its
 * dead-letter policy and retry policy.
 *
 * Configuration comes from the environment, which the Terraform sets per function:
 * `CLOUDMOM_SERVICE` (the service the deployed function serves; unset: every service is
 * registered), `GOOGLE_CLOUD_PROJECT`, `CLOUDMOM_TOPIC`, `CLOUDMOM_DEAD_LETTER_TOPIC`,
 * `CLOUDMOM_REPLY_TOPIC` (defaults: the topology's names), `CLOUDMOM_STAGE`.
 *
 * @example
 * ```sh
 * npx functions-framework --source=dist/examples/gcp/index.js --target=greeter --signature-type=http
 * ```
 * @module
 */
import * as functions from '@google-cloud/functions-framework';
import { PubSubBroker, pushHandler } from 'cloudmom/gcp';
import { registerExample } from '../app.ts';
import { topology } from '../topology.ts';

const env = process.env;
const names = topology.names(env.CLOUDMOM_STAGE || undefined);

/**
 * The services this deployment serves: the one `CLOUDMOM_SERVICE` names, else all of them.
 *
 * @example
 * ```ts
 * servicesOf({ CLOUDMOM_SERVICE: 'worker' }); // ["worker"]
 * ```
 */
export function servicesOf(e: NodeJS.ProcessEnv = env): string[] {
  return e.CLOUDMOM_SERVICE
    ? [topology.service(e.CLOUDMOM_SERVICE).name]
    : topology.services.map((s) => s.name);
}

/**
 * A service's broker: publishes replies and dead letters (to the service's own dead-letter
 * topic); no pull consumer. `maxDeliveries`, retry, concurrency and the reply allow-list come
 * from the topology.
 *
 * @example
 * ```ts
 * await createBroker('greeter').publish({ numbers: [1, 2] }, 'sum');
 * ```
 */
export function createBroker(service: string): PubSubBroker {
  // A Pub/Sub reply address is `projects/<p>/topics/<reply topic>#<requester's key>`, not the
  // topic's name: the broker's default allow-list (any key on its own reply topic) is the
  // topology's reply destination; the example has no extra one (topology.replyAllowList).
  const { replyAllowList: _names, ...options } = topology.brokerOptions(service, {
    stage: env.CLOUDMOM_STAGE || undefined,
  });
  return registerExample(
    new PubSubBroker({
      topic: env.CLOUDMOM_TOPIC ?? names.topic,
      deadLetterTopic: env.CLOUDMOM_DEAD_LETTER_TOPIC ?? names.services[service]!.deadLetter,
      replyTopic: env.CLOUDMOM_REPLY_TOPIC ?? names.replies!,
      ...options,
    }),
  );
}

/** Each served service's broker, by service name. */
export const brokers: Readonly<Record<string, PubSubBroker>> = Object.fromEntries(
  servicesOf().map((s) => [s, createBroker(s)]),
);

for (const service of servicesOf()) functions.http(service, pushHandler(brokers[service]!));
