/**
 * A fresh RabbitMQ topology per test (exchange, queue, dead-letter exchange and queue, all
 * named by a random id) on the node the global setup started, brokers on it, and a reader of
 * its dead-letter queue.
 */
import { randomUUID } from 'node:crypto';
import type { BrokerOptions } from 'cloudmom';
import type { RmqEvent, RmqMessage } from 'cloudmom/amqp';
import { AmqpBroker, type AmqpBrokerOptions } from 'cloudmom/amqp';
import { Connection, type SyncMessage } from 'rabbitmq-client';
import { inject } from 'vitest';

export const url = (): string => inject('amqpUrl');

let shared: Connection | undefined;
/** One connection for the test file's own reads and writes (not the brokers'). */
export function testConnection(): Connection {
  if (!shared) {
    shared = new Connection({
      url: url(),
      frameMax: 131072,
      noDelay: true,
      retryLow: 100,
      retryHigh: 1000,
    });
    shared.on('error', () => {});
  }
  return shared;
}

export interface DeadLetterRecord {
  readonly message: SyncMessage;
  readonly headers: Record<string, unknown>;
  readonly body: unknown;
}

export interface Topology {
  readonly id: string;
  readonly exchange: string;
  readonly queue: string;
  readonly deadLetterExchange: string;
  readonly deadLetterQueue: string;
  broker(options?: Partial<AmqpBrokerOptions> & BrokerOptions): AmqpBroker;
  /** Drains the dead-letter queue into the list (cumulative) and returns it. */
  deadLetters(): Promise<DeadLetterRecord[]>;
  /** Publishes raw bytes to the exchange (no cloudmom headers). */
  publishRaw(m: {
    body: Uint8Array | string;
    routingKey?: string;
    contentType?: string;
    headers?: Record<string, unknown>;
  }): Promise<void>;
  cleanup(): Promise<void>;
}

/** A decoded body as a test reads it: JSON parsed, text as a string, else bytes. */
export function bodyOf(m: { body: unknown; contentType?: string }): unknown {
  const b = m.body;
  if (!Buffer.isBuffer(b)) return b; // the client parsed application/json or text/plain
  const type = m.contentType ?? '';
  try {
    if (type.startsWith('application/json')) return JSON.parse(b.toString('utf8'));
    if (type.startsWith('text/')) return b.toString('utf8');
  } catch {
    // not what it says: bytes
  }
  return new Uint8Array(b);
}

export async function topology(
  options: { queueType?: 'quorum' | 'classic' } = {},
): Promise<Topology> {
  const id = randomUUID().slice(0, 8);
  const exchange = `x-${id}`;
  const queue = `q-${id}`;
  const deadLetterExchange = `${exchange}.dead-letter`;
  const deadLetterQueue = `${queue}.dead-letter`;
  const conn = testConnection();
  const brokers: AmqpBroker[] = [];
  const dead: DeadLetterRecord[] = [];
  const pub = conn.createPublisher({ confirm: true });
  // declared here as AmqpBroker declares it (same arguments, or RabbitMQ refuses the
  // broker's declaration), so raw publishes and dead-letter reads work before any broker starts
  const type = options.queueType ?? 'quorum';
  await conn.exchangeDeclare({ exchange, type: 'topic', durable: true });
  await conn.exchangeDeclare({ exchange: deadLetterExchange, type: 'fanout', durable: true });
  await conn.queueDeclare({
    queue: deadLetterQueue,
    durable: true,
    arguments: { 'x-queue-type': type },
  });
  await conn.queueBind({ queue: deadLetterQueue, exchange: deadLetterExchange, routingKey: '' });
  await conn.queueDeclare({
    queue,
    durable: true,
    arguments: { 'x-queue-type': type, 'x-dead-letter-exchange': deadLetterExchange },
  });
  await conn.queueBind({ queue, exchange, routingKey: '#' });
  return {
    id,
    exchange,
    queue,
    deadLetterExchange,
    deadLetterQueue,
    broker(o = {}) {
      const b = new AmqpBroker({ url: url(), exchange, queue, queueType: options.queueType, ...o });
      brokers.push(b);
      return b;
    },
    async deadLetters() {
      for (;;) {
        const m = await conn.basicGet({ queue: deadLetterQueue, noAck: true });
        if (!m) break;
        dead.push({ message: m, headers: m.headers ?? {}, body: bodyOf(m) });
      }
      return dead;
    },
    async publishRaw(m) {
      await pub.send(
        {
          exchange,
          routingKey: m.routingKey ?? '',
          contentType: m.contentType,
          headers: m.headers,
          durable: true,
        },
        typeof m.body === 'string' ? Buffer.from(m.body) : Buffer.from(m.body),
      );
    },
    async cleanup() {
      await Promise.allSettled(brokers.splice(0).map((b) => b.stop()));
      await pub.close();
      for (const q of [queue, deadLetterQueue])
        await conn.queueDelete({ queue: q }).catch(() => undefined);
      for (const x of [exchange, deadLetterExchange])
        await conn.exchangeDelete({ exchange: x }).catch(() => undefined);
    },
  };
}

/** Closes the shared test connection (afterAll). */
export async function closeTestConnection(): Promise<void> {
  await shared?.close();
  shared = undefined;
}

const javaDate = (seconds: number) =>
  new Date(seconds * 1000).toLocaleString('en-US', {
    timeZone: 'UTC',
    month: 'short',
    day: 'numeric',
    year: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    second: '2-digit',
  });

/** A message received from RabbitMQ as the `aws:rmq` event source writes it. */
export function toRmqRecord(m: SyncMessage): RmqMessage {
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.headers ?? {}))
    headers[k] =
      typeof v === 'string'
        ? { bytes: [...Buffer.from(v)].map((b) => (b > 127 ? b - 256 : b)) }
        : v;
  const body = Buffer.isBuffer(m.body)
    ? m.body
    : Buffer.from(typeof m.body === 'string' ? m.body : JSON.stringify(m.body));
  return {
    basicProperties: {
      contentType: m.contentType ?? null,
      contentEncoding: null,
      headers,
      deliveryMode: m.durable ? 2 : 1,
      priority: null,
      correlationId: m.correlationId ?? null,
      replyTo: m.replyTo ?? null,
      expiration: null,
      messageId: m.messageId ?? null,
      timestamp: m.timestamp === undefined ? null : javaDate(m.timestamp),
      type: null,
      userId: null,
      appId: null,
      clusterId: null,
      bodySize: body.length,
    },
    redelivered: m.redelivered,
    data: body.toString('base64'),
  };
}

export function rmqEvent(queue: string, records: RmqMessage[]): RmqEvent {
  return {
    eventSource: 'aws:rmq',
    eventSourceArn: 'arn:aws:mq:us-east-1:111122223333:broker:cloudmom:b-0000',
    rmqMessagesByQueue: { [`${queue}::/`]: records },
  };
}

/** Takes every message of the queue (basic.get, no ack) as event records. */
export async function drainAsRmq(queue: string): Promise<RmqMessage[]> {
  const out: RmqMessage[] = [];
  for (;;) {
    const m = await testConnection().basicGet({ queue, noAck: true });
    if (!m) return out;
    out.push(toRmqRecord(m));
  }
}
