/**
 * Chaos on moto (see test/chaos/harness.ts): 10,000 messages through three `SqsBroker`
 * (standard queue) consumer processes, and then through three `SnsBroker` ones (topic →
 * raw-delivery subscription → queue), each process SIGKILLed once mid-run and restarted;
 * handlers fail 20% of first deliveries and 1% always. None lost, every poison message
 * dead-lettered with its reason, the queue empty; redeliveries and duplicates counted.
 */
import { CreateTopicCommand, DeleteTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { SnsBroker, SqsBroker } from 'cloudmom/aws';
import { afterAll, inject, it } from 'vitest';
import { expectNothingLost } from '../chaos/expect.ts';
import { type DeadLetter, runChaos } from '../chaos/harness.ts';
import {
  clients,
  createQueueWithDlq,
  deleteQueues,
  drain,
  queueDepth,
  readDeadLetter,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs, sns } = clients(endpoint);
const TOTAL = Number(process.env.CLOUDMOM_CHAOS_MESSAGES ?? 10_000);
const created: string[] = [];
afterAll(() => deleteQueues(sqs, ...created));

/**
 * Most messages published and not yet settled: moto looks at every message of a queue on each
 * ReceiveMessage, so a 1,000-message backlog makes the run 1.5× slower (54 s vs 37 s for the
 * SQS run) with nothing more tested; 250 still keeps every consumer's 20 slots busy.
 */
const BACKLOG = 250;

/** Consumer settings: short visibility so a killed consumer's messages come back soon. */
const CONSUMER = {
  concurrency: 20,
  maxDeliveries: 5,
  waitTimeSeconds: 1,
  visibilityTimeoutSeconds: 4,
  retry: { baseDelayMs: 0, maxDelayMs: 0 },
};

async function queues() {
  const t = await createQueueWithDlq(sqs, `chaos-${uid()}`, {
    visibilityTimeout: CONSUMER.visibilityTimeoutSeconds,
    maxReceiveCount: 20, // SQS's own redrive only as a last resort: the core dead-letters at 5
  });
  created.push(t.queue.url, t.dlq.url);
  return t;
}

const depth = (url: string) => queueDepth(sqs, url);

const readDlq = (url: string) => async (): Promise<DeadLetter[]> =>
  (await drain(sqs, url)).map((m) => {
    const d = readDeadLetter(m);
    return {
      n: (d.body as { n: number }).n,
      reason: d.reason.code,
      description: d.reason.description,
    };
  });

it(`SqsBroker: ${TOTAL.toLocaleString('en')} messages, three consumer processes SIGKILLed and restarted: none lost`, async () => {
  const { queue, dlq } = await queues();
  const publisher = new SqsBroker({ queue: queue.url, client: sqs, logger: false });
  try {
    const r = await runChaos({
      platform: 'SQS standard queue (moto)',
      command: 'npx vitest run --project aws test/aws/chaos.test.ts',
      total: TOTAL,
      worker: 'test/aws/chaos-worker.ts',
      settings: { endpoint, kind: 'sqs', options: { ...CONSUMER, queue: queue.url } },
      publish: (n) => publisher.publish({ n }, 'chaos'),
      readDeadLetters: readDlq(dlq.url),
      queueDepth: () => depth(queue.url),
      backlog: BACKLOG,
    });
    expectNothingLost(r, TOTAL);
  } finally {
    await publisher.stop();
  }
}, 240_000);

it(`SnsBroker: ${TOTAL.toLocaleString('en')} messages, three consumer processes SIGKILLed and restarted: none lost`, async () => {
  const { queue, dlq } = await queues();
  const topic = (await sns.send(new CreateTopicCommand({ Name: `chaos-${uid()}` }))).TopicArn!;
  await sns.send(
    new SubscribeCommand({
      TopicArn: topic,
      Protocol: 'sqs',
      Endpoint: queue.arn,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
  const publisher = new SnsBroker({ topic, client: sns, sqsClient: sqs, logger: false });
  try {
    const r = await runChaos({
      platform: 'SNS topic → SQS queue (moto)',
      command: 'npx vitest run --project aws test/aws/chaos.test.ts',
      total: TOTAL,
      worker: 'test/aws/chaos-worker.ts',
      settings: { endpoint, kind: 'sns', options: { ...CONSUMER, topic, queue: queue.url } },
      publish: (n) => publisher.publish({ n }, 'chaos'),
      readDeadLetters: readDlq(dlq.url),
      queueDepth: () => depth(queue.url),
      backlog: BACKLOG,
    });
    expectNothingLost(r, TOTAL);
  } finally {
    await publisher.stop();
    await sns.send(new DeleteTopicCommand({ TopicArn: topic })).catch(() => {});
  }
}, 240_000);
