import { jsonCodec } from 'cloudmom';
import { PubSubBroker } from 'cloudmom/gcp';
import { emulatorClient, PROJECT, type Topology, topology } from '../gcp/fixture.ts';
import { runConformance } from './suite.ts';

const client = emulatorClient();

runConformance(
  'PubSubBroker (pstest)',
  async () => {
    const t: Topology = await topology(client);
    return {
      broker: (options = {}) => t.broker(options),
      async deadLetters() {
        return t.deadLetters.map((d) => {
          const a = d.attributes;
          let body: unknown = d.data;
          try {
            body = a.content_type?.startsWith('application/json')
              ? jsonCodec.decode(d.data)
              : a.content_type?.startsWith('text/')
                ? d.data.toString('utf8')
                : d.data;
          } catch {
            body = d.data;
          }
          return {
            target: a.target,
            body,
            reason: {
              code: a.dead_letter_reason ?? 'max-deliveries',
              description: a.dead_letter_description ?? 'dead-lettered by the subscription policy',
            },
          };
        });
      },
      async injectRaw(m) {
        await client.topic(t.topic).publishMessage({
          data: Buffer.from(m.body),
          attributes: {
            ...(m.contentType ? { content_type: m.contentType } : {}),
            ...(m.target ? { target: m.target } : {}),
          },
        });
      },
      missingDestinationBroker: (options = {}) =>
        t.broker({ ...options, topic: `${t.topic}-missing`, subscription: undefined }),
      async failingReplyAddress() {
        // the brokers' own reply topic, deleted: publishing the reply fails with NOT_FOUND
        await client.topic(t.replyTopic).delete();
        return `projects/${PROJECT}/topics/${t.replyTopic}#gone`;
      },
      cleanup: () => t.cleanup(),
    };
  },
  {
    capabilities: new PubSubBroker({
      client,
      projectId: PROJECT,
      topic: 'capabilities',
      replyTopic: 'replies',
      logger: false,
    }).capabilities,
    delayReason: 'Pub/Sub has no per-message delivery delay (maxDelaySeconds 0)',
    injectRaw: true,
    missingDestination: true,
    failingReply: true,
    foreignAddress: `projects/${PROJECT}/topics/attacker#x`,
    lockMs: 10_000, // the topology's ackDeadlineSeconds
    timeScale: 2, // CI runs every platform's emulator at once on 2 cores
  },
);
