/**
 * A chaos consumer in its own process (see test/chaos/harness.ts): argv[2] is JSON
 * `{ connectionString, options }`; builds a `ServiceBusBroker` on it and runs it.
 */
import { ServiceBusBroker, type ServiceBusBrokerOptions } from 'cloudmom/azure';
import { runWorker, workerLogger } from '../chaos/harness.ts';

const { connectionString, options } = JSON.parse(process.argv[2]!) as {
  connectionString: string;
  options: ServiceBusBrokerOptions;
};
await runWorker(new ServiceBusBroker({ ...options, connectionString, logger: workerLogger }));
