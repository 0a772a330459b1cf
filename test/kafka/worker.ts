/**
 * A consumer in its own process, for tests that kill one (SIGKILL: no leave, no commit).
 * Reads its settings from argv as JSON ({ brokers, topic, groupId, concurrency }) and prints
 * one line per handled message: `H <key> <seq>`; `READY` once started.
 */
import { KafkaBroker } from 'cloudmom/kafka';

const { brokers, topic, groupId, concurrency } = JSON.parse(process.argv[2]!) as {
  brokers: string[];
  topic: string;
  groupId: string;
  concurrency: number;
};
const broker = new KafkaBroker({
  brokers,
  topic,
  groupId,
  concurrency,
  logger: false,
  maxWaitMs: 200,
  group: { sessionTimeoutMs: 3000, heartbeatIntervalMs: 250, rebalanceTimeoutMs: 3000 },
  connection: { retryDelay: 250, retries: 20 },
});
broker.add('rel', async (_p, body: { k: string; s: number }) => {
  await new Promise((r) => setTimeout(r, Math.random() * 2));
  process.stdout.write(`H ${body.k} ${body.s}\n`);
});
await broker.start();
process.stdout.write('READY\n');
process.on('SIGTERM', () => {
  void broker.stop().then(() => process.exit(0));
});
