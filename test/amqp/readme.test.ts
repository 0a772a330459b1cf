/**
 * The README's RabbitMQ block, run as written (`node --conditions=source`, a child process)
 * against the test node: the block reads `AMQP_URL`, here the node's URL with a virtual host of
 * its own (made with rabbitmqctl) so its names (`cloudmom`, `orders-service`) meet no other
 * test's. The block declares its topology itself. Its last line (`export const handler =
 * rmqHandler(broker)`) is type-checked and built, not invoked: the Amazon MQ entrypoint runs in
 * entrypoint.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runBlock, runnableBlock } from '../../scripts/doc-blocks.ts';
import { rabbitmqctl } from '../emulators/amqp/rabbitmq.ts';

const ctl = inject('amqpCtl');
const vhost = `readme-${randomUUID().slice(0, 8)}`;
const url = ctl ? `${inject('amqpUrl')}/${vhost}` : inject('amqpUrl');
if (ctl) {
  rabbitmqctl(ctl, ['add_vhost', vhost]);
  rabbitmqctl(ctl, ['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
}
afterAll(() => {
  if (ctl) rabbitmqctl(ctl, ['delete_vhost', vhost]);
});
const block = runnableBlock('amqp');

describe('README: RabbitMQ', () => {
  it(`README.md:${block.line} runs as written against RabbitMQ: the reply arrives, it exits`, async () => {
    const run = await runBlock(block.path, { AMQP_URL: url });
    expect(run.code, `exit ${run.code} ${run.signal ?? ''}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toBe('Hi there too\n');
    // and exits once stop() returned: stop()'s 5 s guard on closing the connection used to
    // hold the process that long after a close that took milliseconds
    expect(run.ms).toBeLessThan(4000);
    // the block's queue exists, and its publish and request were consumed
    const conn = new Connection({ url, retryLow: 100, retryHigh: 500 });
    try {
      const q = await conn.queueDeclare({ queue: 'orders-service', passive: true });
      expect(q.messageCount).toBe(0);
    } finally {
      await conn.close();
    }
  }, 90_000);
});
