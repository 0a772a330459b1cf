/**
 * cloudmom on RabbitMQ (AMQP 0-9-1): the {@link AmqpBroker} for long-running consumers and
 * publishers, and {@link rmqHandler}, the Lambda entrypoint for Amazon MQ for RabbitMQ
 * (`aws:rmq` events). Needs the optional peer dependency `rabbitmq-client`.
 *
 * @example
 * ```ts
 * import { AmqpBroker } from 'cloudmom/amqp';
 * const broker = new AmqpBroker({ url: 'amqp://guest:guest@localhost:5672', queue: 'greeter' });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * await broker.publish('Hello World!', 'hello');
 * ```
 * @module
 */
export { AmqpBroker, type AmqpBrokerOptions, UnroutableError } from './broker.ts';
export {
  type RmqBasicProperties,
  RmqBatchError,
  type RmqEvent,
  type RmqHandlerOptions,
  type RmqMessage,
  rmqHandler,
  rmqMessages,
} from './entrypoint.ts';
export { GROUP_KEY, LIMITS } from './wire.ts';
