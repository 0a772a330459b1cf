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
        cleanup: () => t.cleanup(),
      };
    },
    {
      maxMessageBytes: 16 * 1024 * 1024,
      ordering: 'a queue with several consumers and prefetch > 1 keeps no order per key',
      delay:
        'RabbitMQ has no per-message delay without the delayed-message plugin (maxDelaySeconds 0)',
      injectRaw: true,
      timeScale: 2,
    },
  );
}
