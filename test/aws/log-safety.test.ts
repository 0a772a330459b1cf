/**
 * No message content in any log line on AWS (see test/log-safety.ts), on moto: the marked
 * messages through `SqsBroker` and `SnsBroker` (publish, `start()`, replies, `request()`,
 * dead-lettering to the DLQ) and through `lambdaHandler` on SQS events and on SNS events
 * (topic → Lambda), both built from the messages moto holds, at `warn` and at `debug`, every
 * line of the default JSON logger captured.
 */
import { inspect } from 'node:util';
import { CreateTopicCommand, DeleteTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import type { Broker } from 'cloudmom';
import { lambdaHandler, SnsBroker, SqsBroker } from 'cloudmom/aws';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import {
  addHandlers,
  captureLogs,
  DEAD_TARGETS,
  expectNoMarker,
  LEVELS,
  liarCodec,
  MARKER,
  publishMarked,
  runBrokerPath,
} from '../log-safety.ts';
import {
  clients,
  createQueueWithDlq,
  deleteQueues,
  drain,
  lambdaContext,
  readDeadLetter,
  receiveInFlight,
  snsEnvelopeToLambdaRecord,
  toLambdaRecord,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs, sns } = clients(endpoint);
const created: string[] = [];
const topics: string[] = [];
let capture: ReturnType<typeof captureLogs> | undefined;
const stops: Broker[] = [];
afterEach(async () => {
  await Promise.allSettled(stops.splice(0).map((b) => b.stop()));
  capture?.stop();
  capture = undefined;
});
afterAll(async () => {
  await deleteQueues(sqs, ...created);
  for (const t of topics) await sns.send(new DeleteTopicCommand({ TopicArn: t })).catch(() => {});
});

const RETRY = { maxDeliveries: 2, retry: { baseDelayMs: 0, maxDelayMs: 0 }, waitTimeSeconds: 1 };

async function queues() {
  const t = await createQueueWithDlq(sqs, `ls-${uid()}`, { visibilityTimeout: 30 });
  created.push(t.queue.url, t.dlq.url);
  return t;
}

/** A topic with a queue subscribed (raw delivery or SNS envelopes). */
async function topic(raw: boolean) {
  const t = await queues();
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `ls-${uid()}` }));
  topics.push(TopicArn!);
  const sub = await sns.send(
    new SubscribeCommand({
      TopicArn,
      Protocol: 'sqs',
      Endpoint: t.queue.arn,
      ...(raw ? { Attributes: { RawMessageDelivery: 'true' } } : {}),
    }),
  );
  return { ...t, topicArn: TopicArn!, subscription: sub.SubscriptionArn! };
}

async function expectDeadLetters(url: string): Promise<void> {
  const dead = (await drain(sqs, url, { waitTimeSeconds: 1 })).map(readDeadLetter);
  expect(dead.map((d) => d.target).sort()).toEqual([...DEAD_TARGETS].sort());
  expect(dead.some((d) => d.reason.description.includes(MARKER))).toBe(true);
}

const track = <B extends Broker>(b: B): B => {
  stops.push(b);
  return b;
};

describe.each(LEVELS)('at %s, no log line carries the marker', (level) => {
  it('SqsBroker: publish, start(), reply, request(), dead-letters (schema, handler, undecodable)', async () => {
    const { queue, dlq } = await queues();
    capture = captureLogs(level);
    const { logger } = capture;
    const common = { client: sqs, queue: queue.url, logger };
    const consumer = track(new SqsBroker({ ...common, ...RETRY }));
    const publisher = track(new SqsBroker({ ...common, waitTimeSeconds: 1 }));
    const liar = track(new SqsBroker({ ...common, codecs: [liarCodec] }));
    await runBrokerPath(consumer, publisher, liar);
    await Promise.all([consumer.stop(), publisher.stop(), liar.stop()]);
    await expectDeadLetters(dlq.url);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  it('SnsBroker: publish to a topic, start() on its queue, dead-letters', async () => {
    const { queue, dlq, topicArn } = await topic(true);
    capture = captureLogs(level);
    const { logger } = capture;
    const common = { client: sns, sqsClient: sqs, topic: topicArn, logger };
    const consumer = track(new SnsBroker({ ...common, queue: queue.url, ...RETRY }));
    const publisher = track(new SnsBroker(common));
    const liar = track(new SnsBroker({ ...common, codecs: [liarCodec] }));
    await runBrokerPath(consumer, publisher, liar, { request: false });
    await Promise.all([consumer.stop(), publisher.stop(), liar.stop()]);
    await expectDeadLetters(dlq.url);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  it('lambdaHandler: an SQS event of the marked messages', async () => {
    const { queue, dlq } = await queues();
    capture = captureLogs(level);
    // no logger option: the default, jsonLogger() at CLOUDMOM_LOG_LEVEL (set by captureLogs)
    const logger = undefined;
    const common = { client: sqs, queue: queue.url, logger };
    const broker = track(addHandlers(new SqsBroker({ ...common, maxDeliveries: 1 })));
    const liar = track(new SqsBroker({ ...common, codecs: [liarCodec] }));
    const n = await publishMarked(broker, liar);
    const records = (await receiveInFlight(sqs, queue, n)).map((m) => toLambdaRecord(m, queue.arn));
    const res = await lambdaHandler(broker)({ Records: records }, lambdaContext());
    expect(res).toEqual({ batchItemFailures: [] });
    await Promise.all([broker.stop(), liar.stop()]);
    await expectDeadLetters(dlq.url);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  it('lambdaHandler: an SNS event (topic → Lambda) of the marked messages', async () => {
    const { queue, dlq, topicArn, subscription } = await topic(false);
    capture = captureLogs(level);
    // no logger option: the default, jsonLogger() at CLOUDMOM_LOG_LEVEL (set by captureLogs)
    const logger = undefined;
    const common = { client: sns, sqsClient: sqs, topic: topicArn, logger };
    const broker = track(
      addHandlers(new SnsBroker({ ...common, deadLetterQueue: dlq.url, maxDeliveries: 1 })),
    );
    const liar = track(new SnsBroker({ ...common, codecs: [liarCodec] }));
    const n = await publishMarked(broker, liar);
    const envelopes = await receiveInFlight(sqs, queue, n);
    const records = envelopes.map((m) => snsEnvelopeToLambdaRecord(m.Body!, subscription));
    expect(records.every((r) => r.Sns.Message.length > 0)).toBe(true);
    await lambdaHandler(broker)({ Records: records }, lambdaContext());
    await Promise.all([broker.stop(), liar.stop()]);
    await expectDeadLetters(dlq.url);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  it("lambdaHandler: an SNS event with snsFailure 'retry' and no dead-letter queue: the thrown error carries no content", async () => {
    const { queue, topicArn, subscription } = await topic(false);
    capture = captureLogs(level);
    const common = { client: sns, sqsClient: sqs, topic: topicArn };
    const broker = track(addHandlers(new SnsBroker({ ...common, maxDeliveries: 1 })));
    const liar = track(new SnsBroker({ ...common, codecs: [liarCodec] }));
    const n = await publishMarked(broker, liar);
    const envelopes = await receiveInFlight(sqs, queue, n);
    const records = envelopes.map((m) => snsEnvelopeToLambdaRecord(m.Body!, subscription));
    const err = await lambdaHandler(broker, { snsFailure: 'retry' })(
      { Records: records },
      lambdaContext(),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Lambda logs the error a handler rejects with (and middy/users may inspect its cause)
    expect(err).toBeInstanceOf(Error);
    expect(inspect(err, { depth: 10 })).not.toContain(MARKER);
    await Promise.all([broker.stop(), liar.stop()]);
    expectNoMarker(capture.stop(), 1);
  });
});
