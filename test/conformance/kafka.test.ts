/**
 * The conformance suite on KafkaBroker against the real Kafka 4.4 (KRaft) the `kafka` project
 * starts: each test gets fresh topics (3 partitions, a dead-letter topic, a reply topic) and
 * its own consumer group, with short group timings so joins and rebalances stay fast.
 */
import { jsonCodec } from 'cloudmom';
import { KafkaBroker } from 'cloudmom/kafka';
import { afterAll } from 'vitest';
import { Kafka, topology } from '../kafka/fixture.ts';
import { runConformance } from './suite.ts';

const kafka = new Kafka();
afterAll(() => kafka.close());

runConformance(
  'KafkaBroker (Kafka 4.4, KRaft)',
  async () => {
    const t = await topology(kafka);
    // The own reply topic (the default rule), plus a topic that does not exist for the
    // failing-reply case.
    const replyAllowList = [`${t.replyTopic}#*`, `${t.missingTopic}#*`];
    return {
      broker: (options = {}) => t.broker({ replyAllowList, ...options }),
      missingDestinationBroker: (options = {}) => t.broker({ ...options, topic: t.missingTopic }),
      failingReplyAddress: () => `${t.missingTopic}#nobody`,
      async deadLetters() {
        return (await kafka.read(t.deadLetterTopic)).map((r) => {
          const h = r.headers;
          const bytes = r.value ?? Buffer.alloc(0);
          let body: unknown = bytes;
          try {
            body = h.content_type?.startsWith('application/json')
              ? jsonCodec.decode(bytes)
              : h.content_type?.startsWith('text/')
                ? bytes.toString('utf8')
                : bytes;
          } catch {
            body = bytes;
          }
          return {
            target: h.target,
            body,
            reason: {
              code: h.dead_letter_reason ?? '',
              description: h.dead_letter_description ?? '',
            },
          };
        });
      },
      async injectRaw(m) {
        await kafka.produce(t.topic, {
          value: m.body,
          headers: {
            ...(m.contentType ? { content_type: m.contentType } : {}),
            ...(m.target ? { target: m.target } : {}),
          },
        });
      },
      cleanup: () => t.cleanup(),
    };
  },
  {
    capabilities: new KafkaBroker({ brokers: kafka.brokers, logger: false }).capabilities,
    delayReason: 'Kafka has no per-message delivery delay (maxDelaySeconds 0)',
    injectRaw: true,
    foreignAddress: 'attacker-topic#x',
    missingDestination: true,
    failingReply: true,
    // No lock: an unsettled record comes back as soon as the next member of the group reads
    // from the committed offset, which the cases' second broker does right after it joins.
    lockMs: 1500,
    timeScale: 2,
  },
);
