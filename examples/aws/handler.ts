/**
 * The examples app (`examples/app.ts`) as an AWS Lambda function: the example handlers on the
 * {@link SqsBroker} of `cloudmom/aws/lambda` (no receive loop or `request()` in the bundle),
 * behind `lambdaHandler` (middy; SQS events with partial batch response).
 *
 * `serverless.yml` deploys this file, bundled by `infra/aws/bundle.cjs`, as one function per
 * service of `examples/topology.ts` (`greeter`, `worker`), each on its own queue. Its settings
 * come from the environment the generated serverless.yml sets from the topology (so a function
 * and its queues cannot disagree), plus the queue URLs only CloudFormation knows:
 *
 * | variable | meaning |
 * |---|---|
 * | `CLOUDMOM_QUEUE_URL` | the function's inbound queue (name, URL or ARN) — required |
 * | `CLOUDMOM_DLQ_URL` | its dead-letter queue; default: the queue's RedrivePolicy target |
 * | `CLOUDMOM_REPLY_ALLOW_LIST` | comma-separated reply addresses allowed (`*` suffix = prefix); set but empty: none |
 * | `CLOUDMOM_MAX_DELIVERIES` | delivery on which a failing message is dead-lettered (default 5) |
 * | `CLOUDMOM_CONCURRENCY` | records of a batch handled at once (default: the broker's, 10) |
 * | `CLOUDMOM_UNKNOWN_TARGET` | `discard` (default) or `dead-letter` |
 * | `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL` | an emulator (moto, LocalStack) for every SQS call |
 *
 * @example
 * ```yaml
 * # serverless.yml
 * functions:
 *   greeter:
 *     handler: examples/aws/dist/handler.handler
 *     environment: { CLOUDMOM_QUEUE_URL: { Ref: GreeterQueue } }
 *     events: [{ sqs: { arn: { Fn::GetAtt: [GreeterQueue, Arn] }, functionResponseType: ReportBatchItemFailures } }]
 * ```
 */
import { createRequire } from 'node:module';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { lambdaHandler, SqsBroker } from 'cloudmom/aws/lambda';
import { registerExample } from '../app.ts';

/** What the function reads from its environment. */
export interface ExampleLambdaConfig {
  readonly queue: string;
  readonly deadLetterQueue: string | undefined;
  readonly replyAllowList: string[] | undefined;
  readonly maxDeliveries: number;
  readonly concurrency: number | undefined;
  readonly unknownTarget: 'discard' | 'dead-letter';
  readonly endpoint: string | undefined;
}

/**
 * Reads the function's configuration from the environment; throws naming a missing variable.
 *
 * @example
 * ```ts
 * const config = configFromEnv({ CLOUDMOM_QUEUE_URL: 'orders' });
 * ```
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ExampleLambdaConfig {
  const queue = env.CLOUDMOM_QUEUE_URL;
  if (!queue) throw new Error('CLOUDMOM_QUEUE_URL is not set (serverless.yml sets it)');
  // Unset: the broker's default; set (even empty, a one-way service): exactly these.
  const allow = env.CLOUDMOM_REPLY_ALLOW_LIST?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknownTarget = env.CLOUDMOM_UNKNOWN_TARGET === 'dead-letter' ? 'dead-letter' : 'discard';
  return {
    queue,
    deadLetterQueue: env.CLOUDMOM_DLQ_URL || undefined,
    replyAllowList: allow,
    maxDeliveries: Number(env.CLOUDMOM_MAX_DELIVERIES) || 5,
    concurrency: Number(env.CLOUDMOM_CONCURRENCY) || undefined,
    unknownTarget,
    endpoint: env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL || undefined,
  };
}

/**
 * With an emulator endpoint in the environment, a client that sends every call there: queue
 * URLs from CloudFormation name the real SQS host (`https://sqs.<region>.amazonaws.com/...`),
 * which the SDK would otherwise prefer over `AWS_ENDPOINT_URL`. Without one, the broker's
 * default client (created on first use, so a batch with no reply loads no SDK).
 */
function sqsClient(endpoint: string | undefined): SQSClient | undefined {
  if (!endpoint) return undefined;
  // `require`, as cloudmom/aws loads the SDK: one copy of it (the runtime's, on Lambda).
  const sdk = createRequire(import.meta.url)(
    '@aws-sdk/client-sqs',
  ) as typeof import('@aws-sdk/client-sqs');
  return new sdk.SQSClient({ endpoint });
}

const config = configFromEnv();
const client = sqsClient(config.endpoint);

/** The function's broker, with the example handlers (cold start: built once per instance). */
export const broker = registerExample(
  new SqsBroker({
    queue: config.queue,
    ...(config.deadLetterQueue ? { deadLetterQueue: config.deadLetterQueue } : {}),
    ...(config.replyAllowList ? { replyAllowList: config.replyAllowList } : {}),
    ...(client ? { client } : {}),
    ...(config.concurrency ? { concurrency: config.concurrency } : {}),
    maxDeliveries: config.maxDeliveries,
    unknownTarget: config.unknownTarget,
  }),
);

/** The Lambda handler: SQS event in, `{ batchItemFailures }` out. */
export const handler = lambdaHandler(broker);
