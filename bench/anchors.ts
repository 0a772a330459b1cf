/**
 * The raw-client anchors of the RabbitMQ and Kafka publish benchmarks, shared by the suites
 * (bench/amqp.bench.ts, bench/kafka.bench.ts) and their profiling drivers (bench/profile/), so
 * a profile measures exactly what the table compares with.
 */
import { randomUUID } from 'node:crypto';
import type { Publisher } from 'rabbitmq-client';

/** The ~256-byte JSON body every publish benchmark sends (`id` set per message). */
export const BENCH_BODY = { id: 0, text: 'x'.repeat(200), tags: ['a', 'b', 'c'] };

/** A1's anchor: one confirmed, mandatory, persistent publish as rabbitmq-client's user writes it. */
export function rawAmqpPublish(pub: Publisher, exchange: string): (i: number) => Promise<void> {
  return (i) =>
    pub.send(
      {
        exchange,
        routingKey: 'bench',
        mandatory: true,
        durable: true,
        messageId: globalThis.crypto.randomUUID(),
        contentType: 'application/json',
        headers: { target: 'bench' },
      },
      Buffer.from(JSON.stringify({ ...BENCH_BODY, id: i })),
    );
}

const h = (s: string) => Buffer.from(s);

/** K1's anchor records `from`…`to - 1`: the JSON body and the headers cloudmom sends. */
export function rawKafkaRecords(topic: string, from: number, to: number) {
  const messages = [];
  for (let k = from; k < to; k++)
    messages.push({
      topic,
      value: Buffer.from(JSON.stringify({ ...BENCH_BODY, id: k })),
      headers: new Map([
        [h('target'), h('bench')],
        [h('content_type'), h('application/json')],
        [h('message_id'), h(randomUUID())],
      ]),
    });
  return messages;
}
