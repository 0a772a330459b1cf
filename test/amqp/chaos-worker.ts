/**
 * A chaos consumer in its own process (see test/chaos/harness.ts): argv[2] is JSON
 * `{ url, options }`; builds an `AmqpBroker` on the test RabbitMQ and runs it.
 */
import { AmqpBroker, type AmqpBrokerOptions } from 'cloudmom/amqp';
import { runWorker, workerLogger } from '../chaos/harness.ts';

const { url, options } = JSON.parse(process.argv[2]!) as {
  url: string;
  options: AmqpBrokerOptions;
};
await runWorker(new AmqpBroker({ ...options, url, logger: workerLogger }));
