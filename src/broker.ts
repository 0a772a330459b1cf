/**
 * The broker every platform broker extends: the core (broker-core.ts: publish, add, dispatch,
 * stop) with its long-running side attached (long-running.ts: `start()`'s receive loop,
 * `request()`). Function-side brokers (`cloudmom/aws/lambda`) extend the core alone.
 */
import { BrokerCore } from './broker-core.ts';
import { longRunning } from './long-running.ts';
import type { BrokerOptions } from './options.ts';
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
    super(transport, options, longRunning, defaultMeasure);
  }
}
