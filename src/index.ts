/**
 * cloudmom — message-oriented middleware for serverless and edge code.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from 'cloudmom';
 * const broker = new MemoryBroker();
 * broker.add('example', async (properties, body) => 'Hi there too');
 * await broker.start();
 * await broker.publish('Hello World!', 'example');
 * ```
 * @module
 */
export {
  type AddOptions,
  Broker,
  BrokerCore,
  type BrokerOptions,
  type BrokerStats,
  type Handler,
  type Properties,
  type PublishEntry,
  type PublishOptions,
  type Reply,
  type RequestOptions,
  type RetryOptions,
} from './broker.ts';
export {
  BYTES_TYPE,
  bytesCodec,
  type Codec,
  JSON_TYPE,
  jsonCodec,
  TEXT_TYPE,
  textCodec,
} from './codec.ts';
export { type DispatchOptions, dispatch, loggerOf } from './entrypoint.ts';
export {
  BrokerStoppedError,
  CloudmomError,
  DecodeError,
  type ErrorCode,
  InvalidArgumentError,
  InvalidMessageError,
  MessageTooLargeError,
  NotFoundError,
  PublishBatchError,
  type PublishResult,
  ReplyNotAllowedError,
  RequestAbortedError,
  RequestTimeoutError,
  SchemaError,
  SendError,
} from './errors.ts';
export { jsonLogger, type Logger, type LogLevel, silentLogger } from './log.ts';
export {
  type DeadLetter,
  MemoryBroker,
  type MemoryBrokerOptions,
  type MemoryDelivery,
  MemoryHub,
  MemoryQueue,
  type MemoryQueueOptions,
} from './memory.ts';
export type { StandardResult, StandardSchema } from './schema.ts';
export { MOMService } from './service.ts';
export { OffsetTracker, PushBuffer } from './sources.ts';
export {
  defineTopology,
  type RepliesDefinition,
  type ServiceDefinition,
  type ServiceSettings,
  type ServiceSpec,
  type TargetDefinition,
  type TargetSpec,
  type Topology,
  type TopologyDefinition,
  type TopologyNames,
} from './topology.ts';
export type {
  Capabilities,
  DeadLetterCode,
  DeadLetterReason,
  DeadLetters,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Source,
  Transport,
  Verdict,
} from './transport.ts';
export { SENT } from './transport.ts';
export {
  type BrokerPlatform,
  type BrokerUrl,
  createBroker,
  parseBrokerUrl,
  URL_PARAMETERS,
} from './url.ts';
