/**
 * The broker every platform broker extends: the core (broker-core.ts: publish, add, dispatch,
 * stop) with its long-running side attached (long-running.ts: `start()`'s receive loop,
 * `request()`) and `publishBatch` (publish-batch.ts). Function-side brokers
 * (`cloudmom/aws/lambda`) extend the core alone.
 */
import { BrokerCore, type BrokerInternals, INTERNALS, type LongRunning } from './broker-core.ts';
import type { Body } from './codec.ts';
import { BrokerStoppedError } from './errors.ts';
import { longRunning } from './long-running.ts';
import type { BrokerOptions, PublishEntry, Reply, RequestOptions } from './options.ts';
import { publishBatch } from './publish-batch.ts';
import { defaultMeasure } from './publisher.ts';
import type { Transport } from './transport.ts';

export {
  allowListMatcher,
  BrokerCore,
  type BrokerInternals,
  type DispatchOptions,
  INTERNALS,
} from './broker-core.ts';
export {
  type AddOptions,
  BROKER_OPTION_KEYS,
  type BrokerOptions,
  type BrokerStats,
  type Handler,
  type Properties,
  type PublishEntry,
  type PublishOptions,
  type Reply,
  type RequestOptions,
  type RetryOptions,
} from './options.ts';
export { defaultMeasure, utf8Length } from './publisher.ts';

/**
 * The broker: publish bodies to targets, add handlers per target, reply by returning a value.
 * Construct a platform's broker (`MemoryBroker`, `SqsBroker`, `ServiceBusBroker`,
 * `PubSubBroker`...); all share this behaviour.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker();
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * const reply = await broker.request('Hello World!', 'hello');
 * console.log(reply.body); // "Hi there too"
 * await broker.stop();
 * ```
 */
export class Broker extends BrokerCore {
  /** Platform brokers call this with their transport; users construct the subclasses. */
  protected constructor(transport: Transport, options: BrokerOptions = {}) {
    super(transport, options, defaultMeasure);
  }

  /**
   * Publishes several messages at once: each entry is a body, a target and any option of
   * `publish`. Every entry is checked before anything is sent (a bad one rejects the call with
   * its typed error, naming its index, and nothing is sent); the messages then travel in the
   * same batches as single publishes (per destination, up to the platform's limits). Resolves
   * with the message ids in entry order once all were accepted; if some could not be sent,
   * rejects with a `PublishBatchError` whose `results` say which (the others were sent).
   * One promise for the whole call: cheaper than a `publish` per message when there are many.
   * The function-side brokers (`cloudmom/aws/lambda`) have none: `publish` each message there.
   *
   * @example
   * ```ts
   * const ids = await broker.publishBatch([
   *   { body: { id: 1 }, target: 'orders' },
   *   { body: { id: 2 }, target: 'orders', correlationId: 'c-2' },
   * ]);
   * ```
   */
  publishBatch(entries: readonly PublishEntry[]): Promise<string[]> {
    try {
      const core = this[INTERNALS];
      if (core.closed()) throw new BrokerStoppedError('publishBatch');
      return publishBatch(core.publisher, entries);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Publishes a request and resolves with the correlated reply. Replies come back to this
   * instance's own reply address, so concurrent requests and several instances stay apart.
   * The function-side brokers (`cloudmom/aws/lambda`) have none.
   *
   * @example
   * ```ts
   * const { body } = await broker.request({ city: 'Prague' }, 'geocode', { timeoutMs: 5000 });
   * ```
   */
  async request(body: Body, target: string, options: RequestOptions = {}): Promise<Reply> {
    return sideOf(this[INTERNALS], 'request').request(body, target, options);
  }

  /**
   * Starts long-running consumption (containers, CLIs). Function entrypoints do not need it.
   * Rejects when the platform refused the subscription (a queue not created yet, throttling):
   * call it again to retry. The function-side brokers (`cloudmom/aws/lambda`) have none.
   *
   * @example
   * ```ts
   * await broker.start(); process.on('SIGTERM', () => broker.stop());
   * ```
   */
  async start(): Promise<void> {
    return sideOf(this[INTERNALS], 'start').start();
  }
}

/** The long-running side, made on first use; BrokerStoppedError once stop() has begun. */
function sideOf(core: BrokerInternals, what: string): LongRunning {
  if (core.stopped()) throw new BrokerStoppedError(what);
  core.longRunning ??= longRunning(core);
  return core.longRunning;
}
