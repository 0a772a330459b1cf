/**
 * cloudmom on AWS: {@link SqsBroker} and {@link SnsBroker} (on `@aws-sdk/client-sqs` and
 * `@aws-sdk/client-sns` v3, optional peers loaded on first use) and the Lambda entrypoint
 * {@link lambdaHandler} (a middy handler for SQS and SNS events).
 *
 * @example
 * ```ts
 * import { SqsBroker, lambdaHandler } from 'cloudmom/aws';
 * const broker = new SqsBroker({ queue: process.env.QUEUE_URL! });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * export const handler = lambdaHandler(broker);
 * ```
 * @module
 */
export {
  type LambdaHandlerOptions,
  lambdaHandler,
  type SnsEvent,
  type SnsRecord,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsRecord,
  type SqsRecordAttribute,
} from './lambda.ts';
export { SNS_MAX_BYTES, SnsBroker, type SnsBrokerOptions } from './sns.ts';
export { SQS_MAX_BYTES, SqsBroker, type SqsBrokerOptions } from './sqs.ts';
