import { expect, inject, test } from 'vitest';
import { amqpAnswers, rabbitmqctl } from '../emulators/amqp/rabbitmq.ts';

test('the peer answers AMQP', async () => {
  expect(await amqpAnswers(inject('amqpUrl'))).toBe(true);
});

test.runIf(inject('amqpCtl'))('rabbitmqctl reaches the test node', () => {
  const ctl = inject('amqpCtl');
  if (!ctl) return;
  expect(rabbitmqctl(ctl, ['status'])).toMatch(/RabbitMQ version/);
});
