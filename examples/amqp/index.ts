/**
 * The example app on RabbitMQ: the handlers of `examples/app.ts` on one {@link AmqpBroker} per
 * service of `examples/topology.ts` (greeter: hello, sum; worker: audit, flaky), as a
 * long-running worker (`node --conditions=source examples/amqp/index.ts [service…]`) or as
 * Lambdas behind Amazon MQ for RabbitMQ event sources (`handlers.greeter`, `handlers.worker`).
 * The topology is provisioned by `infra/amqp/definitions.json` (generated from the topology:
 * `npm run infra`; `rabbitmqctl import_definitions`), so the brokers declare nothing; their
 * options come from the same topology (`amqpBrokerOptions`), so names and limits agree.
 *
 * Configuration comes from the environment: `AMQP_URL` (default
 * `amqp://guest:guest@localhost:5672`).
 *
 * @example
 * ```sh
 * rabbitmqctl import_definitions infra/amqp/definitions.json
 * AMQP_URL=amqp://guest:guest@localhost:5672 node --conditions=source examples/amqp/index.ts greeter
 * ```
 * @module
 */
import { MOMService } from 'cloudmom';
import { AmqpBroker, type AmqpBrokerOptions, rmqHandler } from 'cloudmom/amqp';
import { amqpBrokerOptions } from 'cloudmom/infra';
import { registerExample } from '../app.ts';
import { topology } from '../topology.ts';
import { deploy } from './deploy.ts';

/**
 * The broker options of one service of the example (the queues of infra/amqp/definitions.json).
 *
 * @example
 * ```ts
 * const broker = new AmqpBroker({ ...exampleOptions('greeter'), url: 'amqp://localhost' });
 * ```
 */
export function exampleOptions(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
): AmqpBrokerOptions {
  return {
    url: env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672',
    ...amqpBrokerOptions(topology, service, deploy),
  };
}

/**
 * The example's brokers, one per service, registered under the service's name (they connect
 * on first use; `mom.start()` consumes every service's queue).
 *
 * @example
 * ```ts
 * await mom.start();
 * const reply = await mom.get('greeter').request({ numbers: [1, 2] }, 'sum');
 * ```
 */
export const mom = new MOMService();
for (const s of topology.services)
  mom.register(
    s.name,
    registerExample(new AmqpBroker(exampleOptions(s.name)), {
      log: (line) => process.stdout.write(`${line}\n`),
    }),
  );

/**
 * The Lambda handlers, one per service, for an Amazon MQ for RabbitMQ event source on the
 * service's queue.
 *
 * @example
 * ```ts
 * await handlers.greeter!(event); // throws RmqBatchError when the batch must be retried
 * ```
 */
export const handlers: Readonly<Record<string, ReturnType<typeof rmqHandler>>> = Object.fromEntries(
  mom.names().map((name) => [name, rmqHandler(mom.get<AmqpBroker>(name))]),
);

if (import.meta.url === `file://${process.argv[1]}`) {
  const services = process.argv.slice(2);
  const running = services.length > 0 ? services.map((s) => mom.get(s)) : undefined;
  if (running) await Promise.all(running.map((b) => b.start()));
  else await mom.start();
  process.stdout.write(
    `cloudmom example consuming ${(services.length > 0 ? services : mom.names()).join(', ')}; Ctrl-C stops\n`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(
      signal,
      () => void (running ? Promise.all(running.map((b) => b.stop())) : mom.stop()),
    );
}
