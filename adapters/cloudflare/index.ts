/**
 * cloudmom on Cloudflare Queues, for Workers: the {@link CloudflareQueueBroker} (publish
 * through producer bindings) and the Worker's `queue()` entrypoint {@link queueHandler}.
 * Needs no SDK: the bindings are the runtime's. Works without the `nodejs_compat` flag.
 *
 * @example
 * ```ts
 * import { CloudflareQueueBroker, queueHandler } from 'cloudmom/cloudflare';
 *
 * let broker: CloudflareQueueBroker | undefined;
 * const brokerFor = (env: Env) =>
 *   (broker ??= new CloudflareQueueBroker({
 *     queue: env.QUEUE,
 *     deadLetterQueue: env.DEAD_LETTERS,
 *     replyQueues: { 'cloudmom-replies': env.REPLIES },
 *   }).add('hello', () => 'Hi there too'));
 *
 * export default {
 *   async fetch(request: Request, env: Env) {
 *     await brokerFor(env).publish('Hello World!', 'hello', { replyTo: 'cloudmom-replies' });
 *     return new Response('queued', { status: 202 });
 *   },
 *   queue: (batch: MessageBatch, env: Env, ctx: ExecutionContext) => queueHandler(brokerFor(env))(batch, env, ctx),
 * };
 * ```
 * @module
 */
export {
  CloudflareQueueBroker,
  type CloudflareQueueBrokerOptions,
  DEAD_LETTER_ADDRESS,
  type QueueBinding,
  type QueueContentType,
} from './broker.ts';
export {
  type QueueBatch,
  type QueueBatchMessage,
  type QueueHandlerOptions,
  queueHandler,
} from './entrypoint.ts';
export {
  deadLetterInfo,
  ENVELOPE_VERSION,
  type Envelope,
  LIMITS,
  type QueueMessage,
} from './wire.ts';
