/**
 * Chaos on Kafka (see test/chaos/harness.ts): 10,000 messages (100 record keys) on a topic of
 * 6 partitions through three `KafkaBroker` consumer processes in one group, each SIGKILLed
 * once mid-run and restarted; handlers fail 20% of first deliveries and 1% always. None lost,
 * every poison message in the dead-letter topic with its reason, the group's lag 0 (every
 * partition committed to its end); redeliveries and duplicates counted.
 *
 * A SIGKILLed member sends no LeaveGroup: its partitions stall until its session times out
 * (`sessionTimeoutMs` 3 s here, 30 s by default) and the group rebalances; the records after
 * their last committed watermark are delivered again (with a delivery count of 1: Kafka's
 * counts live in the consumer's memory). `CLOUDMOM_CHAOS_KAFKA_SESSION_MS` sets the session
 * timeout (default 3 000 ms; cloudmom's default, 30 s, keeps each killed member's partitions
 * idle that long).
 */
import { ListOffsetTimestamps } from '@platformatic/kafka';
import { KafkaBroker } from 'cloudmom/kafka';
import { afterAll, it } from 'vitest';
import { expectNothingLost } from '../chaos/expect.ts';
import { type DeadLetter, runChaos } from '../chaos/harness.ts';
import { FAST_GROUP, Kafka, uid } from './fixture.ts';

const TOTAL = Number(process.env.CLOUDMOM_CHAOS_MESSAGES ?? 10_000);
const PARTITIONS = 6;
/** The group's session timeout (how long a SIGKILLed member holds its partitions). */
const SESSION_MS = Number(
  process.env.CLOUDMOM_CHAOS_KAFKA_SESSION_MS ?? FAST_GROUP.sessionTimeoutMs,
);
const kafka = new Kafka();
afterAll(() => kafka.close());

/** Records of the group not yet committed, over every partition of `topic`. */
async function lag(groupId: string, topic: string): Promise<number> {
  const ends = (
    await kafka.reader.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.LATEST })
  ).get(topic)!;
  const committed = await kafka.committed(groupId, topic, PARTITIONS);
  let n = 0n;
  for (let p = 0; p < PARTITIONS; p++) {
    const c = committed[p] ?? -1n;
    n += (ends[p] ?? 0n) - (c < 0n ? 0n : c);
  }
  return Number(n);
}

it(`KafkaBroker: ${TOTAL.toLocaleString('en')} messages, three consumer processes SIGKILLed and restarted: none lost`, async () => {
  const topic = `chaos-${uid()}`;
  const deadLetterTopic = `${topic}.dlt`;
  const groupId = `${topic}-group`;
  await kafka.createTopics([topic], PARTITIONS);
  await kafka.createTopics([deadLetterTopic], 1);
  const options = {
    brokers: kafka.brokers,
    topic,
    groupId,
    concurrency: 20,
    maxDeliveries: 5,
    retry: { baseDelayMs: 0, maxDelayMs: 0 },
    maxWaitMs: 200,
    group: {
      sessionTimeoutMs: SESSION_MS,
      heartbeatIntervalMs: Math.min(FAST_GROUP.heartbeatIntervalMs, Math.floor(SESSION_MS / 3)),
      rebalanceTimeoutMs: Math.max(FAST_GROUP.rebalanceTimeoutMs, SESSION_MS),
    },
    connection: { retryDelay: 250, retries: 20 },
  };
  const publisher = new KafkaBroker({ ...options, groupId: `${groupId}-publisher`, logger: false });
  const seen = new Set<bigint>();
  try {
    const r = await runChaos({
      platform: `Kafka (${PARTITIONS} partitions, 100 keys)`,
      command: 'npx vitest run --project kafka test/kafka/chaos.test.ts',
      total: TOTAL,
      worker: 'test/kafka/chaos-worker.ts',
      settings: { options },
      publish: (n) => publisher.publish({ n }, 'chaos', { groupKey: `k${n % 100}` }),
      readDeadLetters: async (): Promise<DeadLetter[]> => {
        const out: DeadLetter[] = [];
        for (const rec of await kafka.read(deadLetterTopic)) {
          if (seen.has(rec.offset)) continue;
          seen.add(rec.offset);
          out.push({
            n: (JSON.parse(rec.value!.toString('utf8')) as { n: number }).n,
            reason: rec.headers.dead_letter_reason ?? '',
            description: rec.headers.dead_letter_description ?? '',
          });
        }
        return out;
      },
      queueDepth: () => lag(groupId, topic),
    });
    expectNothingLost(r, TOTAL);
  } finally {
    await publisher.stop();
    await kafka.deleteTopics([topic, deadLetterTopic]);
  }
}, 300_000);
