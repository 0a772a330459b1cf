import { randomUUID } from 'node:crypto';
import { AmqpBroker } from 'cloudmom/amqp';
import { afterAll } from 'vitest';
import { closeTestConnection, topology } from '../amqp/fixture.ts';
import { runConformance } from './suite.ts';

afterAll(() => closeTestConnection());

for (const queueType of ['quorum', 'classic'] as const) {
  runConformance(
    `AmqpBroker (RabbitMQ, ${queueType} queue)`,
    async () => {
      const t = await topology({ queueType });
      return {
        broker: (options = {}) => t.broker(options),
        async deadLetters() {
          return (await t.deadLetters()).map((d) => ({
            target: typeof d.headers.target === 'string' ? d.headers.target : undefined,
            body: d.body,
            reason: {
              code: String(d.headers.dead_letter_reason ?? 'rabbitmq'),
              description: String(d.headers.dead_letter_description ?? 'dead-lettered by RabbitMQ'),
            },
          }));
        },
        async injectRaw(m) {
          await t.publishRaw({ body: m.body, contentType: m.contentType, routingKey: m.target });
        },
        missingDestinationBroker: (options = {}) =>
          t.broker({ ...options, exchange: `${t.exchange}-missing`, declare: false }),
        // an allowed reply queue name that does not exist: RabbitMQ returns the reply (NO_ROUTE)
        failingReplyAddress: () => `cloudmom.reply.gone-${randomUUID()}`,
        cleanup: () => t.cleanup(),
      };
    },
    {
      capabilities: new AmqpBroker({ logger: false }).capabilities,
      orderingReason: 'a queue with several consumers and prefetch > 1 keeps no order per key',
      delayReason: 'RabbitMQ has no per-message delay without the delayed-message plugin',
      // the suite's names but `__proto__`, refused at publish: rabbitmq-client's decoder drops it
      headerKeys: [
        'x-tenant',
        'a.b.c',
        'with space',
        'slash/and/../dots',
        'quote"s',
        'ünïcødé',
        'UPPER_lower-09',
        'constructor',
      ],
      injectRaw: true,
      missingDestination: true,
      failingReply: true,
      // no lock: an unsettled delivery comes back when its channel closes, not after a timeout
      lockMs: 1000,
      timeScale: 2,
    },
  );
}
