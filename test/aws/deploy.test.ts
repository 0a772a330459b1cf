/**
 * `osls deploy` of serverless.yml into moto (AWS_ENDPOINT_URL), then the deployed resources
 * checked through the AWS SDK: queues with SSE, redrive to their DLQs, visibility timeouts,
 * the topic, the functions and their event source mappings.
 *
 * moto's CloudFormation silently skips `AWS::SNS::Subscription` and `AWS::SQS::QueuePolicy`:
 * those are asserted on the template by iac.test.ts (and the end-to-end test creates the
 * subscriptions from the template through the SDK). When the endpoint is one that does create
 * them (LocalStack through CLOUDMOM_AWS_ENDPOINT), they are checked here too.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
} from '@aws-sdk/client-lambda';
import {
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SNSClient,
} from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topology } from '../../examples/topology.ts';
import {
  deployExamples,
  packageExamples,
  REGION,
  stackNames,
  uniqueStage,
} from '../../infra/aws/stack.ts';
import { awsClientConfig, MOTO_ACCOUNT_ID } from '../emulators/aws/moto.ts';
import { cacheDir } from '../emulators/harness.ts';

const endpoint = inject('awsEndpoint');
const stage = uniqueStage('deploy');
// The names the generated serverless.yml gives the stage: the topology's (awsNames).
const names = stackNames(stage);
const services = topology.services.map((s) => ({ spec: s, ...names.services[s.name]! }));
const replies = names.replies!;
const dir = join(cacheDir('aws-deploy'), stage);
const sqs = new SQSClient(awsClientConfig(endpoint));
const sns = new SNSClient(awsClientConfig(endpoint));
const lambda = new LambdaClient(awsClientConfig(endpoint));
const topicArn = `arn:aws:sns:${REGION}:${MOTO_ACCOUNT_ID}:${names.topic}`;

async function queue(name: string) {
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }),
  );
  return { url: QueueUrl!, attributes: Attributes ?? {} };
}

beforeAll(async () => {
  await packageExamples(stage, dir);
  await deployExamples(stage, dir, endpoint);
}, 240_000);

afterAll(() => {
  sqs.destroy();
  sns.destroy();
  lambda.destroy();
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}.home`, { recursive: true, force: true });
});

describe('osls deploy into moto', () => {
  it('creates every queue, named as the topology names it, encrypted with SSE-SQS', async () => {
    const prefix = `cloudmom-examples-${stage}`;
    expect(services.map((s) => [s.queue, s.deadLetter])).toEqual([
      [`${prefix}-greeter`, `${prefix}-greeter-dead-letter`],
      [`${prefix}-worker`, `${prefix}-worker-dead-letter`],
    ]);
    expect([names.topic, replies]).toEqual([prefix, `${prefix}-replies`]);
    for (const name of [...services.flatMap((s) => [s.queue, s.deadLetter]), replies]) {
      const q = await queue(name);
      expect(q.attributes.SqsManagedSseEnabled, name).toBe('true');
    }
  });

  it('redrives each inbound queue to its DLQ after 5 receives, visibility 90 s', async () => {
    for (const s of services) {
      const q = await queue(s.queue);
      const dlq = await queue(s.deadLetter);
      const redrive = JSON.parse(q.attributes.RedrivePolicy ?? '{}');
      expect(redrive.deadLetterTargetArn).toBe(dlq.attributes.QueueArn);
      expect(Number(redrive.maxReceiveCount)).toBe(5);
      expect(q.attributes.VisibilityTimeout).toBe('90');
      expect(dlq.attributes.MessageRetentionPeriod).toBe('1209600');
      expect(dlq.attributes.RedrivePolicy).toBeUndefined();
    }
    const r = await queue(replies);
    expect(r.attributes.MessageRetentionPeriod).toBe('3600');
    expect(r.attributes.RedrivePolicy).toBeUndefined();
  });

  it('creates the topic, encrypted with the SNS key', async () => {
    const { Attributes } = await sns.send(new GetTopicAttributesCommand({ TopicArn: topicArn }));
    expect(Attributes?.TopicArn).toBe(topicArn);
    expect(Attributes?.KmsMasterKeyId).toBe('alias/aws/sns');
  });

  it('deploys both functions on Node 22 with their configuration', async () => {
    const r = await queue(replies);
    expect(r.attributes.QueueArn).toMatch(new RegExp(`:${replies}$`));
    for (const { spec, function: fn, queue: q, deadLetter: dlq } of services) {
      const c = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }));
      expect(c.Runtime).toBe('nodejs22.x');
      expect(c.Handler).toBe('examples/aws/dist/handler.handler');
      expect(c.Timeout).toBe(10);
      const env = c.Environment?.Variables ?? {};
      expect(env.CLOUDMOM_QUEUE_URL).toMatch(new RegExp(`/${q}$`));
      expect(env.CLOUDMOM_DLQ_URL).toMatch(new RegExp(`/${dlq}$`));
      expect(env.CLOUDMOM_MAX_DELIVERIES).toBe('5');
      expect(env.CLOUDMOM_CONCURRENCY).toBe('5');
      expect(env.CLOUDMOM_UNKNOWN_TARGET).toBe('dead-letter');
      if (spec.replies) {
        // Replies only to the reply queue, by name or by the URL CloudFormation gives it.
        const allow = (env.CLOUDMOM_REPLY_ALLOW_LIST ?? '').split(',');
        expect(allow.length).toBe(2);
        expect(allow[0]).toBe(replies);
        expect(allow[1]).toMatch(new RegExp(`/${replies}$`));
      } else {
        // A one-way service may reply nowhere.
        expect(env.CLOUDMOM_REPLY_ALLOW_LIST).toBe('');
      }
    }
  });

  it('maps each queue to its function with ReportBatchItemFailures', async () => {
    for (const { function: fn, queue: q } of services) {
      const { attributes } = await queue(q);
      // By queue: moto filters FunctionName literally, and CloudFormation gave it the ARN.
      const { EventSourceMappings = [] } = await lambda.send(
        new ListEventSourceMappingsCommand({ EventSourceArn: attributes.QueueArn }),
      );
      expect(EventSourceMappings.length).toBe(1);
      const m = EventSourceMappings[0]!;
      expect(m.FunctionArn).toMatch(new RegExp(`:function:${fn}$`));
      expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(m.BatchSize).toBe(10);
      expect(m.MaximumBatchingWindowInSeconds).toBe(1);
      expect(m.ScalingConfig?.MaximumConcurrency).toBe(5);
      expect(m.State).toBe('Enabled');
      // The AWS rule: visibility timeout ≥ 6 × function timeout + batching window.
      const c = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }));
      expect(Number(attributes.VisibilityTimeout)).toBeGreaterThanOrEqual(
        6 * (c.Timeout ?? 0) + (m.MaximumBatchingWindowInSeconds ?? 0),
      );
    }
  });

  it('subscriptions and queue policies: skipped by moto, else filtered and raw', async () => {
    const { Subscriptions = [] } = await sns.send(
      new ListSubscriptionsByTopicCommand({ TopicArn: topicArn }),
    );
    const greeter = await queue(services[0]!.queue);
    if (Subscriptions.length === 0) {
      // moto 5.2's CloudFormation skips AWS::SNS::Subscription and AWS::SQS::QueuePolicy
      // (both asserted on the template by iac.test.ts).
      expect(greeter.attributes.Policy).toBeUndefined();
      return;
    }
    expect(Subscriptions.map((s) => s.Endpoint?.split(':').pop()).sort()).toEqual(
      services.map((s) => s.queue).sort(),
    );
    const policy = JSON.parse(greeter.attributes.Policy ?? '{}');
    expect(JSON.stringify(policy)).toContain(topicArn);
  });
});
