/**
 * Chaos on pstest (see test/chaos/harness.ts): 10,000 messages through three `PubSubBroker`
 * consumer processes (streaming pull), each SIGKILLed once mid-run and restarted; handlers
 * fail 20% of first deliveries and 1% always. None lost, every poison message dead-lettered
 * with its reason, the subscription empty; redeliveries and duplicates counted.
 */
import { PubSubBroker } from 'cloudmom/gcp';
import { afterAll, inject, it } from 'vitest';
import { expectNothingLost } from '../chaos/expect.ts';
import { type DeadLetter, runChaos } from '../chaos/harness.ts';
import { emulatorClient, PROJECT, type Topology, topology } from './fixture.ts';

const TOTAL = Number(process.env.CLOUDMOM_CHAOS_MESSAGES ?? 10_000);
const client = emulatorClient();
let t: Topology | undefined;
afterAll(async () => {
  await t?.cleanup();
  await client.close();
});

/** Pull (returnImmediately) then release: how many messages are deliverable right now. */
async function deliverable(subscription: string): Promise<number> {
  const name = `projects/${PROJECT}/subscriptions/${subscription}`;
  const call = <T>(method: string, reqOpts: object) =>
    new Promise<T>((resolve, reject) =>
      (client as any).request(
        { client: 'SubscriberClient', method, reqOpts, gaxOpts: {} },
        (err: Error | null, r: T) => (err ? reject(err) : resolve(r)),
      ),
    );
  const r = await call<{ receivedMessages?: { ackId: string }[] }>('pull', {
    subscription: name,
    maxMessages: 1000,
    returnImmediately: true,
  });
  const ids = (r.receivedMessages ?? []).map((m) => m.ackId);
  if (ids.length > 0)
    await call('modifyAckDeadline', { subscription: name, ackIds: ids, ackDeadlineSeconds: 0 });
  return ids.length;
}

it(`PubSubBroker: ${TOTAL.toLocaleString('en')} messages, three consumer processes SIGKILLed and restarted: none lost`, async () => {
  t = await topology(client, { ordering: false, maxDeliveryAttempts: 20 });
  const publisher = new PubSubBroker({
    client,
    projectId: PROJECT,
    topic: t.topic,
    logger: false,
  });
  let read = 0;
  try {
    const r = await runChaos({
      platform: 'Pub/Sub (pstest)',
      command: 'npx vitest run --project gcp test/gcp/chaos.test.ts',
      total: TOTAL,
      worker: 'test/gcp/chaos-worker.ts',
      settings: {
        host: inject('pubsubEmulatorHost'),
        projectId: PROJECT,
        options: {
          topic: t.topic,
          subscription: t.subscription,
          deadLetterTopic: t.deadLetterTopic,
          concurrency: 20,
          maxDeliveries: 5,
          retry: { baseDelayMs: 0, maxDelayMs: 0 },
          subscriberOptions: { batching: { maxMilliseconds: 10 } },
        },
      },
      publish: (n) => publisher.publish({ n }, 'chaos'),
      readDeadLetters: async (): Promise<DeadLetter[]> => {
        const fresh = t!.deadLetters.slice(read);
        read += fresh.length;
        return fresh.map((d) => ({
          n: (JSON.parse(d.data.toString()) as { n: number }).n,
          reason: d.attributes.dead_letter_reason ?? 'pstest dead-letter policy',
          description: d.attributes.dead_letter_description ?? '',
        }));
      },
      queueDepth: () => deliverable(t!.subscription),
      // a killed consumer's leases (10 s ack deadline, extended by its client) expire before the check
      quietAfterKillMs: 12_000,
    });
    expectNothingLost(r, TOTAL);
  } finally {
    await publisher.stop();
  }
}, 240_000);
