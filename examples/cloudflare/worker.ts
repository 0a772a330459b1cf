/**
 * The example app on Cloudflare: the handlers of `examples/app.ts` in the Workers that
 * `infra/cloudflare/wrangler.toml` (generated from `examples/topology.ts`) deploys — one
 * Worker per service (`--env greeter`, `--env worker`) and the front Worker — all from this
 * one module; each gets only its own bindings.
 *
 * Cloudflare Queues have no topic: each service has its own queue, and this module holds one
 * broker per service (its `queue` = that service's producer binding, named by
 * `cloudflareBindings(topology)`), so a publish to a target goes through the broker of the
 * target's service (`topology.serviceOf(target)`).
 *
 * - `fetch`: `POST /<target>` publishes the request's JSON body to that target's service
 *   queue (with replies to the reply queue when the target replies); answers 202 with the
 *   message id, 404 for a target no service serves.
 * - `queue`: a batch of a service's queue goes through `queueHandler` of that service's broker
 *   (what cannot succeed is copied to the service's dead-letter queue with its reason); a
 *   batch of the reply queue (the front Worker) is logged by the `reply` handler.
 *
 * Needs no compatibility flag (`nodejs_compat` is optional).
 *
 * @example
 * ```sh
 * npx wrangler deploy --config infra/cloudflare/wrangler.toml --env greeter
 * npx wrangler deploy --config infra/cloudflare/wrangler.toml
 * curl -X POST https://cloudmom-examples.<you>.workers.dev/sum -d '{"numbers":[1,2,3]}'
 * ```
 * @module
 */
import {
  CloudflareQueueBroker,
  type QueueBatch,
  type QueueBinding,
  queueHandler,
} from 'cloudmom/cloudflare';
import { cloudflareBindings } from 'cloudmom/infra';
import { registerExample } from '../app.ts';
import { topology } from '../topology.ts';

/**
 * The Worker's env: the producer bindings of infra/cloudflare/wrangler.toml, named by
 * `cloudflareBindings(topology)` (`GREETER_QUEUE`, `GREETER_DEAD_LETTERS`, `REPLIES`…), and
 * `CLOUDMOM_STAGE` when generated for a stage.
 */
export type Env = Readonly<Record<string, unknown>>;

/** The brokers of one Worker, by service and by the queue they consume. */
export interface Brokers {
  /** The broker that publishes to each service's queue (and consumes it, in that service's Worker). */
  readonly byService: ReadonlyMap<string, CloudflareQueueBroker>;
  /** The broker of each queue this Worker may consume. */
  readonly byQueue: ReadonlyMap<string, CloudflareQueueBroker>;
  /** The reply queue's name, when this Worker may send replies there. */
  readonly replyQueue?: string;
}

const log = (line: string) => console.log(line);
let brokers: Brokers | undefined;

function isBinding(v: unknown): v is QueueBinding {
  return typeof (v as QueueBinding | undefined)?.send === 'function';
}

/**
 * The Worker's brokers, built once per isolate from the bindings (they are the same for every
 * request of a deployment).
 *
 * @example
 * ```ts
 * await brokersFor(env).byService.get('greeter')!.publish({ numbers: [1, 2] }, 'sum');
 * ```
 */
export function brokersFor(env: Env): Brokers {
  if (brokers) return brokers;
  const stage =
    typeof env.CLOUDMOM_STAGE === 'string' && env.CLOUDMOM_STAGE !== ''
      ? env.CLOUDMOM_STAGE
      : undefined;
  const names = cloudflareBindings(topology, stage === undefined ? {} : { stage });
  const bound = (name: string) => (isBinding(env[name]) ? env[name] : undefined);
  const replies = names.replies && bound(names.replies.binding);
  const replyQueues = replies && names.replies ? { [names.replies.queue]: replies } : undefined;
  const byService = new Map<string, CloudflareQueueBroker>();
  const byQueue = new Map<string, CloudflareQueueBroker>();
  for (const s of topology.services) {
    const own = names.services[s.name]!;
    const queue = bound(own.binding);
    if (!queue) continue;
    const deadLetterQueue = bound(own.deadLetterBinding);
    const broker = registerExample(
      new CloudflareQueueBroker({
        ...topology.brokerOptions(s.name, stage === undefined ? {} : { stage }),
        queue,
        queueName: own.queue,
        ...(deadLetterQueue && { deadLetterQueue }),
        ...(replyQueues && { replyQueues }),
      }),
      { log },
    );
    byService.set(s.name, broker);
    byQueue.set(own.queue, broker);
  }
  if (replies && names.replies) {
    // the front Worker consumes the replies: target "reply"
    const broker = new CloudflareQueueBroker({ queue: replies, queueName: names.replies.queue });
    broker.add('reply', (properties, body) => {
      log(`reply    ← ${JSON.stringify(body)} (correlation ${properties.correlationId})`);
    });
    byQueue.set(names.replies.queue, broker);
  }
  brokers = {
    byService,
    byQueue,
    ...(replyQueues && names.replies && { replyQueue: names.replies.queue }),
  };
  return brokers;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const target = new URL(request.url).pathname.slice(1);
    if (request.method !== 'POST' || target === '')
      return new Response('POST /<target> with a JSON body\n', { status: 405 });
    const service = topology.serviceOf(target);
    const b = brokersFor(env);
    const broker = service && b.byService.get(service.name);
    if (!service || !broker) return new Response('no service serves it\n', { status: 404 });
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return new Response('the body must be JSON\n', { status: 400 });
    }
    const replies = service.targets.find((t) => t.name === target)?.replies;
    const messageId = await broker.publish(
      body,
      target,
      replies && b.replyQueue ? { replyTo: b.replyQueue } : {},
    );
    return Response.json({ messageId }, { status: 202 });
  },

  async queue(batch: QueueBatch, env: Env, ctx: unknown): Promise<void> {
    const broker = brokersFor(env).byQueue.get(batch.queue);
    if (!broker) {
      console.error(`no broker for the queue ${batch.queue}: its batch is retried`);
      batch.retryAll();
      return;
    }
    await queueHandler(broker)(batch, env, ctx);
  },
};
