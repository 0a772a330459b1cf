/**
 * The README's AWS block, run as written (`node --conditions=source`, a child process) against
 * moto: the SDK finds moto through `AWS_ENDPOINT_URL`, in a region of its own so the block's
 * names (`orders`, `events`) meet no other test's. The test creates the queues and topic the
 * block names, and a queue subscribed to the topic to see the block's SNS publish arrive. The
 * block's last line (`export const handler = lambdaHandler(broker)`) is type-checked and built,
 * not invoked: the Lambda entrypoint runs against moto in lambda.test.ts.
 */
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { describe, expect, inject, it } from 'vitest';
import { runBlock, runnableBlock } from '../../scripts/doc-blocks.ts';
import { AWS_TEST_CREDENTIALS } from '../emulators/aws/moto.ts';
import { drain } from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const region = 'ap-southeast-2';
const config = { endpoint, region, credentials: { ...AWS_TEST_CREDENTIALS } };
const sqs = new SQSClient(config);
const sns = new SNSClient(config);
const block = runnableBlock('aws');

describe('README: AWS', () => {
  it(`README.md:${block.line} runs as written against moto: the reply arrives, SNS delivers, it exits`, async () => {
    const orders = await sqs.send(
      new CreateQueueCommand({ QueueName: 'orders', Attributes: { VisibilityTimeout: '5' } }),
    );
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: 'orders-dlq' }));
    const topic = await sns.send(new CreateTopicCommand({ Name: 'events' }));
    const tap = await sqs.send(new CreateQueueCommand({ QueueName: 'events-tap' }));
    const tapArn = (
      await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: tap.QueueUrl!, AttributeNames: ['QueueArn'] }),
      )
    ).Attributes!.QueueArn!;
    await sns.send(
      new SubscribeCommand({
        TopicArn: topic.TopicArn!,
        Protocol: 'sqs',
        Endpoint: tapArn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    for (const q of [orders, dlq, tap]) await drain(sqs, q.QueueUrl!);

    const run = await runBlock(block.path, {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: AWS_TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: AWS_TEST_CREDENTIALS.secretAccessKey,
      AWS_PROFILE: undefined,
      AWS_SESSION_TOKEN: undefined,
    });
    expect(run.code, `exit ${run.code} ${run.signal ?? ''}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toBe('Hi there too\n');

    // SnsBroker published 'hi' with target 'hello' to the topic
    const tapped = await drain(sqs, tap.QueueUrl!, { waitTimeSeconds: 2 });
    expect(tapped.map((m) => [m.Body, m.MessageAttributes?.target?.StringValue])).toEqual([
      ['hi', 'hello'],
    ]);
    // the queue holds nothing: 'order.created' (no handler) was discarded, the request handled
    expect(await drain(sqs, orders.QueueUrl!)).toEqual([]);
    expect(await drain(sqs, dlq.QueueUrl!)).toEqual([]);
    // stop() deleted the per-instance reply queue
    const left = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'cloudmom-reply-' }));
    expect(left.QueueUrls ?? []).toEqual([]);
  }, 90_000);
});
