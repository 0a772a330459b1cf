/**
 * A chaos consumer in its own process (see test/chaos/harness.ts): argv[2] is JSON
 * `{ host, projectId, options }` (host: the emulator's `host:port`); builds a `PubSubBroker`
 * on it and runs it.
 */
import { PubSub } from '@google-cloud/pubsub';
import { PubSubBroker, type PubSubBrokerOptions } from 'cloudmom/gcp';
import { runWorker, workerLogger } from '../chaos/harness.ts';

const { host, projectId, options } = JSON.parse(process.argv[2]!) as {
  host: string;
  projectId: string;
  options: PubSubBrokerOptions;
};
process.env.PUBSUB_EMULATOR_HOST = host;
process.env.METADATA_SERVER_DETECTION = 'none';
const client = new PubSub({ projectId, apiEndpoint: host });
await runWorker(new PubSubBroker({ ...options, client, projectId, logger: workerLogger }));
