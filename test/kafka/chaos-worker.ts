/**
 * A chaos consumer in its own process (see test/chaos/harness.ts): argv[2] is JSON
 * `{ options }` (brokers, topic, group timings...); builds a `KafkaBroker` and runs it.
 */
import { KafkaBroker, type KafkaBrokerOptions } from 'cloudmom/kafka';
import { runWorker, workerLogger } from '../chaos/harness.ts';

const { options } = JSON.parse(process.argv[2]!) as { options: KafkaBrokerOptions };
await runWorker(new KafkaBroker({ ...options, logger: workerLogger }));
