/**
 * The example app on Cloudflare: the handlers of `examples/app.ts` in one Worker, which
 * `infra/cloudflare/wrangler.toml` deploys (`wrangler deploy`).
 *
 * - `fetch`: `POST /<target>` publishes the request's JSON body to that target on the
 *   `cloudmom` queue, with replies to `cloudmom-replies`; answers 202 with the message id.
 * - `queue`: batches of `cloudmom` (hello, sum, audit, flaky) and of `cloudmom-replies` (the
 *   replies, target `reply`, logged) go through `queueHandler`; what cannot succeed is copied to
 *   `cloudmom-dead-letter` with its reason.
 *
 * Needs no compatibility flag (`nodejs_compat` is optional).
 *
 * @example
 * ```sh
 * npx wrangler deploy --config infra/cloudflare/wrangler.toml
 * curl -X POST https://cloudmom-example.<you>.workers.dev/sum -d '{"numbers":[1,2,3]}'
 * ```
 * @module
 */
import {
  CloudflareQueueBroker,
  type QueueBatch,
  type QueueBinding,
  queueHandler,
} from 'cloudmom/cloudflare';
import { registerExample } from '../app.ts';

/** The Worker's bindings (see infra/cloudflare/wrangler.toml). */
export interface Env {
  readonly QUEUE: QueueBinding;
  readonly DEAD_LETTERS: QueueBinding;
  readonly REPLIES: QueueBinding;
}

/** The reply queue: its name is the reply address messages carry. */
export const REPLY_QUEUE = 'cloudmom-replies';

let broker: CloudflareQueueBroker | undefined;

/**
 * The Worker's broker, built once per isolate from the bindings (they are the same for every
 * request of a deployment).
 *
 * @example
 * ```ts
 * await brokerFor(env).publish({ numbers: [1, 2] }, 'sum', { replyTo: REPLY_QUEUE });
 * ```
 */
export function brokerFor(env: Env): CloudflareQueueBroker {
  if (!broker) {
    broker = registerExample(
      new CloudflareQueueBroker({
        queue: env.QUEUE,
        queueName: 'cloudmom',
        deadLetterQueue: env.DEAD_LETTERS,
        replyQueues: { [REPLY_QUEUE]: env.REPLIES },
        maxDeliveries: 5, // ≤ max_retries of the consumer (wrangler.toml): cloudmom decides, with a reason
      }),
      { log: (line) => console.log(line) },
    );
    broker.add('reply', (properties, body) => {
      console.log(`reply    ← ${JSON.stringify(body)} (correlation ${properties.correlationId})`);
    });
  }
  return broker;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const target = new URL(request.url).pathname.slice(1);
    if (request.method !== 'POST' || target === '')
      return new Response('POST /<target> with a JSON body\n', { status: 405 });
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return new Response('the body must be JSON\n', { status: 400 });
    }
    const messageId = await brokerFor(env).publish(body, target, { replyTo: REPLY_QUEUE });
    return Response.json({ messageId }, { status: 202 });
  },

  queue(batch: QueueBatch, env: Env, ctx: unknown): Promise<void> {
    return queueHandler(brokerFor(env))(batch, env, ctx);
  },
};
