/**
 * `cloudmom/kafka`: the broker on Apache Kafka (MSK, Confluent, self-managed, Event Hubs'
 * Kafka endpoint) and the Lambda entrypoint for MSK / self-managed Kafka event sources.
 * Needs the optional peer dependency `@platformatic/kafka`.
 *
 * @example
 * ```ts
 * import { KafkaBroker, kafkaHandler } from 'cloudmom/kafka';
 *
 * const broker = new KafkaBroker({ brokers: ['localhost:9092'], topic: 'orders', groupId: 'billing' });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * const reply = await broker.request('Hello World!', 'hello');
 *
 * // Lambda, MSK / self-managed Kafka event source mapping
 * export const handler = kafkaHandler(broker);
 * ```
 */
export {
  KafkaBroker,
  type KafkaBrokerOptions,
  type KafkaClients,
  type KafkaConnectionOptions,
  type KafkaGroupOptions,
} from './broker.ts';
export {
  type KafkaBatchResponse,
  KafkaBatchRetryError,
  type KafkaEvent,
  type KafkaEventRecord,
  type KafkaHandlerOptions,
  kafkaHandler,
} from './entrypoint.ts';
export {
  DEAD_LETTER_SUFFIX,
  DEFAULT_REPLY_TOPIC,
  deadLetterOf,
  fromRecord,
  LIMITS,
  parseAddress,
  type RecordOut,
  replyAddress,
  toRecord,
  type WireRecord,
} from './wire.ts';
