/**
 * Chaos on the Service Bus peer (see test/chaos/harness.ts): 10,000 messages through three
 * `ServiceBusBroker` consumer processes (peek-lock, `receiver.subscribe`), each SIGKILLed once
 * mid-run and restarted; handlers fail 20% of first deliveries and 1% always. None lost, every
 * poison message dead-lettered natively with its reason, the queue empty (locked messages
 * included: a peek sees them); redeliveries and duplicates counted.
 */
import { randomUUID } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import { ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, inject, it } from 'vitest';
import { bodyBytes } from '../../adapters/azure/wire.ts';
import { expectNothingLost } from '../chaos/expect.ts';
import { type DeadLetter, runChaos } from '../chaos/harness.ts';
import { peekCount } from './peer/helpers.ts';

const TOTAL = Number(process.env.CLOUDMOM_CHAOS_MESSAGES ?? 10_000);
const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString);
afterAll(() => client.close());

it(`ServiceBusBroker: ${TOTAL.toLocaleString('en')} messages, three consumer processes SIGKILLed and restarted: none lost`, async () => {
  // `chaos-`: the peer gives it a 5 s lock and a max delivery count of 50.
  const queue = `chaos-${randomUUID().slice(0, 8)}`;
  const publisher = new ServiceBusBroker({ client, queue, logger: false });
  const dlq = client.createReceiver(queue, {
    subQueueType: 'deadLetter',
    receiveMode: 'receiveAndDelete',
    skipParsingBodyAsJson: true,
  });
  try {
    const r = await runChaos({
      platform: 'Service Bus queue (peer)',
      command: 'npx vitest run --project azure test/azure/chaos.test.ts',
      total: TOTAL,
      worker: 'test/azure/chaos-worker.ts',
      settings: {
        connectionString,
        options: {
          queue,
          concurrency: 20,
          maxDeliveries: 5,
          retry: { baseDelayMs: 0, maxDelayMs: 0 },
        },
      },
      publish: (n) => publisher.publish({ n }, 'chaos'),
      readDeadLetters: async (): Promise<DeadLetter[]> => {
        const got = await dlq.receiveMessages(1000, { maxWaitTimeInMs: 100 });
        return got.map((m) => ({
          n: (JSON.parse(Buffer.from(bodyBytes(m)).toString()) as { n: number }).n,
          reason: String(m.deadLetterReason ?? ''),
          description: String(m.deadLetterErrorDescription ?? ''),
        }));
      },
      queueDepth: () => peekCount(client, queue, 1000),
    });
    expectNothingLost(r, TOTAL);
  } finally {
    await dlq.close();
    await publisher.stop();
  }
}, 300_000);
