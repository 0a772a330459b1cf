/**
 * cloudmom on AWS: {@link SqsBroker} and {@link SnsBroker} (on `@aws-sdk/client-sqs` and
 * `@aws-sdk/client-sns` v3, optional peers loaded on first use) and the Lambda entrypoint
 * {@link lambdaHandler} (SQS and SNS events; middy middlewares with `.use()` when
 * `@middy/core` is installed).
 *
 * Files: `broker.ts` (the brokers, their transport and source), `wire.ts` (the SQS/SNS wire
 * mapping and the record decoders), `entrypoint.ts` (the Lambda handler), `sdk.ts` (lazy SDK
 * loading, SDK errors).
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
  SNS_MAX_BYTES,
  SnsBroker,
  type SnsBrokerOptions,
  SQS_MAX_BYTES,
  SqsBroker,
  type SqsBrokerOptions,
} from './broker.ts';
export {
  type LambdaHandler,
  type LambdaHandlerOptions,
  type LambdaMiddleware,
  lambdaHandler,
  type SnsEvent,
  type SnsRecord,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsRecord,
  type SqsRecordAttribute,
} from './entrypoint.ts';
