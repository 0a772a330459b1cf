/**
 * A fresh Pub/Sub topology on pstest (or `PUBSUB_EMULATOR_HOST`) per test: topic,
 * subscription (dead-letter policy, ordering), dead-letter topic with a reading subscription,
 * reply topic; and brokers on it.
 */
import { randomUUID } from 'node:crypto';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import type { BrokerOptions } from 'cloudmom';
import { PubSubBroker, type PubSubBrokerOptions } from 'cloudmom/gcp';
import { inject } from 'vitest';

export const PROJECT = 'cloudmom-test';

/** Points the client at the emulator the global setup started; returns a client. */
export function emulatorClient(): PubSub {
  const host = inject('pubsubEmulatorHost');
  process.env.PUBSUB_EMULATOR_HOST = host;
  process.env.PUBSUB_PROJECT_ID = PROJECT;
  process.env.METADATA_SERVER_DETECTION = 'none'; // no probe of the GCE metadata server
  return new PubSub({ projectId: PROJECT, apiEndpoint: host });
}

export interface DeadLetterRecord {
  readonly message: Message;
  readonly attributes: Record<string, string>;
  readonly data: Buffer;
}

export interface Topology {
  readonly client: PubSub;
  readonly topic: string;
  readonly subscription: string;
  readonly deadLetterTopic: string;
  readonly replyTopic: string;
  /** Dead-lettered messages read so far (pstest's own dead-lettering included). */
  readonly deadLetters: DeadLetterRecord[];
  broker(options?: Partial<PubSubBrokerOptions> & BrokerOptions): PubSubBroker;
  cleanup(): Promise<void>;
}

/** Creates the topology; `subscription: false` skips the main subscription. */
export async function topology(
  client: PubSub,
  options: { maxDeliveryAttempts?: number; filter?: string; ordering?: boolean } = {},
): Promise<Topology> {
  const id = randomUUID().slice(0, 12);
  const topic = `t-${id}`;
  const deadLetterTopic = `dl-${id}`;
  const replyTopic = `r-${id}`;
  const subscription = `s-${id}`;
  await Promise.all([topic, deadLetterTopic, replyTopic].map((t) => client.createTopic(t)));
  await client.createSubscription(topic, subscription, {
    deadLetterPolicy: {
      deadLetterTopic: `projects/${PROJECT}/topics/${deadLetterTopic}`,
      maxDeliveryAttempts: options.maxDeliveryAttempts ?? 10,
    },
    enableMessageOrdering: options.ordering ?? true,
    ackDeadlineSeconds: 10,
    ...(options.filter ? { filter: options.filter } : {}),
  });
  const [dlSub] = await client.createSubscription(deadLetterTopic, `dls-${id}`);
  const deadLetters: DeadLetterRecord[] = [];
  const onDead = (m: Message) => {
    deadLetters.push({ message: m, attributes: { ...m.attributes }, data: m.data });
    m.ack();
  };
  dlSub.on('message', onDead);
  dlSub.on('error', () => {});
  const brokers: PubSubBroker[] = [];
  return {
    client,
    topic,
    subscription,
    deadLetterTopic,
    replyTopic,
    deadLetters,
    broker(o = {}) {
      const b = new PubSubBroker({
        client,
        projectId: PROJECT,
        topic,
        subscription,
        deadLetterTopic,
        replyTopic,
        subscriberOptions: { batching: { maxMilliseconds: 10 } },
        ...o,
      });
      brokers.push(b);
      return b;
    },
    async cleanup() {
      dlSub.removeListener('message', onDead);
      await dlSub.close().catch(() => {});
      await Promise.allSettled(
        [subscription, `dls-${id}`].map((s) => client.subscription(s).delete()),
      );
      await Promise.allSettled(
        [topic, deadLetterTopic, replyTopic].map((t) => client.topic(t).delete()),
      );
    },
  };
}

export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export type { Subscription };
