/**
 * The example app on RabbitMQ: the handlers of `examples/app.ts` on an {@link AmqpBroker},
 * as a long-running worker (`node --conditions=source examples/amqp/index.ts`) or as a Lambda
 * behind an Amazon MQ for RabbitMQ event source (`handler`). The topology is provisioned by
 * `infra/amqp/definitions.json` (`rabbitmqctl import_definitions`), so the broker declares
 * nothing.
 *
 * Configuration comes from the environment: `AMQP_URL` (default
 * `amqp://guest:guest@localhost:5672`), `CLOUDMOM_EXCHANGE` (cloudmom), `CLOUDMOM_QUEUE`
 * (cloudmom-example).
 *
 * @example
 * ```sh
 * rabbitmqctl import_definitions infra/amqp/definitions.json
 * AMQP_URL=amqp://guest:guest@localhost:5672 node --conditions=source examples/amqp/index.ts
 * ```
 * @module
 */
import { AmqpBroker, type AmqpBrokerOptions, rmqHandler } from 'cloudmom/amqp';
import { registerExample } from '../app.ts';

/**
 * The broker options of the example (the topology of infra/amqp/definitions.json).
 *
 * @example
 * ```ts
 * const broker = new AmqpBroker({ ...exampleOptions(), url: 'amqp://localhost' });
 * ```
 */
export function exampleOptions(env: NodeJS.ProcessEnv = process.env): AmqpBrokerOptions {
  return {
    url: env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672',
    exchange: env.CLOUDMOM_EXCHANGE ?? 'cloudmom',
    queue: env.CLOUDMOM_QUEUE ?? 'cloudmom-example',
    declare: false, // provisioned by infra/amqp/definitions.json
    maxDeliveries: 5, // below the queue's x-delivery-limit (10), RabbitMQ's own backstop
  };
}

/**
 * The example's broker (connects on first use).
 *
 * @example
 * ```ts
 * const reply = await broker.request({ numbers: [1, 2] }, 'sum');
 * ```
 */
export const broker: AmqpBroker = registerExample(new AmqpBroker(exampleOptions()), {
  log: (line) => process.stdout.write(`${line}\n`),
});

/**
 * The Lambda handler for an Amazon MQ for RabbitMQ event source on `cloudmom-example`.
 *
 * @example
 * ```ts
 * await handler(event); // throws RmqBatchError when the batch must be retried
 * ```
 */
export const handler = rmqHandler(broker);

if (import.meta.url === `file://${process.argv[1]}`) {
  await broker.start();
  process.stdout.write('cloudmom example worker consuming cloudmom-example; Ctrl-C stops\n');
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void broker.stop());
}
