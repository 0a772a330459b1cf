/**
 * Dead letters are at-least-once: the core sends the copy, then acknowledges the original, and
 * the two cannot be one atomic step across two queues. A consumer that dies between them (the
 * SNS chaos run once saw it) leaves the original to come back, and it is dead-lettered again:
 * two copies. They must be detectable as one: each copy carries the original's `message_id`
 * (and its `delivery_count`), so a reader of the DLQ de-duplicates on the id.
 *
 * The death between copy and ack is made reproducible here by failing the consumer's
 * DeleteMessageBatch calls (a middleware on its real SQS client, against moto) until the
 * second copy was sent: what a SIGKILL at that moment leaves behind, without the timing luck.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { SqsBroker } from 'cloudmom/aws';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  clients,
  createQueueWithDlq,
  deleteQueues,
  drain,
  readDeadLetter,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs } = clients(endpoint);
const created: string[] = [];
afterAll(() => deleteQueues(sqs, ...created));

/** A client on moto whose deletes fail until `copies()` reaches 2. */
function dyingBeforeTheAck(copiesTo: string): { client: SQSClient; copies: () => number } {
  const { sqs: client } = clients(endpoint);
  let copies = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { QueueUrl?: string };
      const command = context.commandName ?? '';
      if (command === 'DeleteMessageBatchCommand' && copies < 2)
        throw Object.assign(new Error('socket hang up (the process died before its ack)'), {
          name: 'TimeoutError',
        });
      const out = await next(args);
      if (command.startsWith('SendMessage') && input.QueueUrl === copiesTo) copies++;
      return out;
    },
    { step: 'initialize', name: 'dieBeforeTheAck' },
  );
  return { client, copies: () => copies };
}

describe('dead letters are at-least-once, and detectable', () => {
  it('a copy sent twice (death between copy and ack) carries the same message_id, with its delivery count', async () => {
    const { queue, dlq } = await createQueueWithDlq(sqs, `dlid-${uid()}`, { maxReceiveCount: 10 });
    created.push(queue.url, dlq.url);
    const { client, copies } = dyingBeforeTheAck(dlq.url);
    const broker = new SqsBroker({
      queue: queue.url,
      deadLetterQueue: dlq.url,
      client,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 1,
      logger: false,
    });
    // a message with no target can never succeed: dead-lettered on each delivery
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '{"id":7}',
        MessageAttributes: {
          content_type: { DataType: 'String', StringValue: 'application/json' },
        },
      }),
    );
    await broker.start();
    const deadline = Date.now() + 30_000;
    while (copies() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500)); // the second ack goes through
    await broker.stop();

    expect(copies()).toBe(2);
    const letters = (await drain(sqs, dlq.url, { waitTimeSeconds: 1 })).map((m) => ({
      ...readDeadLetter(m),
      deliveryCount: m.MessageAttributes?.delivery_count?.StringValue,
      sqsId: m.MessageId,
    }));
    expect(letters).toHaveLength(2);
    // two SQS messages, one original: the same message_id, the reason, and how often it came
    expect(new Set(letters.map((l) => l.sqsId)).size).toBe(2);
    expect(new Set(letters.map((l) => l.messageId)).size).toBe(1);
    expect(letters.map((l) => l.reason.code)).toEqual(['missing-target', 'missing-target']);
    expect(letters.map((l) => l.deliveryCount).sort()).toEqual(['1', '2']);
    // and the original is gone once its ack got through
    expect(await drain(sqs, queue.url)).toEqual([]);
  }, 60_000);
});
