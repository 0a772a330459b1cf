/**
 * infra/amqp/definitions.json loaded into the test node with `rabbitmqctl import_definitions`,
 * checked against what AmqpBroker would declare, and the example app (examples/amqp) run
 * through it: replies, a dead-letter with its reason, an unroutable target refused.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendError } from 'cloudmom';
import { AmqpBroker, UnroutableError } from 'cloudmom/amqp';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { rabbitmqctl } from '../emulators/amqp/rabbitmq.ts';
import { ROOT } from '../emulators/harness.ts';
import { closeTestConnection, testConnection, url } from './fixture.ts';

const ctl = inject('amqpCtl');

afterAll(async () => {
  const conn = testConnection();
  for (const queue of ['cloudmom-example', 'cloudmom-example.dead-letter'])
    await conn.queueDelete({ queue }).catch(() => undefined);
  for (const exchange of ['cloudmom', 'cloudmom.dead-letter'])
    await conn.exchangeDelete({ exchange }).catch(() => undefined);
  if (ctl) rabbitmqctl(ctl, ['clear_policy', 'cloudmom-reply-queues']);
  await closeTestConnection();
});

describe.runIf(ctl)('infra/amqp/definitions.json', () => {
  it('imports into RabbitMQ with rabbitmqctl import_definitions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cloudmom-defs-'));
    const file = join(dir, 'definitions.json');
    copyFileSync(join(ROOT, 'infra/amqp/definitions.json'), file);
    try {
      rabbitmqctl(ctl!, ['import_definitions', file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const queues = rabbitmqctl(ctl!, [
      'list_queues',
      'name',
      'type',
      'arguments',
      '--quiet',
      '--no-table-headers',
    ]);
    expect(queues).toMatch(/cloudmom-example\s+quorum\s+.*x-delivery-limit/);
    expect(queues).toMatch(/cloudmom-example\.dead-letter\s+quorum/);
    const bindings = rabbitmqctl(ctl!, [
      'list_bindings',
      'source_name',
      'routing_key',
      '--quiet',
      '--no-table-headers',
    ]);
    for (const key of ['hello', 'sum', 'audit', 'flaky'])
      expect(bindings).toMatch(new RegExp(`cloudmom\\s+${key}\\b`));
  });

  it('is what AmqpBroker declares for the same topology (no PRECONDITION_FAILED)', async () => {
    const b = new AmqpBroker({
      url: url(),
      exchange: 'cloudmom',
      queue: 'cloudmom-example',
      bindings: ['hello', 'sum', 'audit', 'flaky'],
      deliveryLimit: 10,
      logger: false,
    });
    await b.start(); // the queue is empty: nothing to consume
    await b.stop();
  });

  it('runs the example app through it: replies, dead-letter with reason, unroutable refused', async () => {
    process.env.AMQP_URL = url();
    const { broker } = await import('../../examples/amqp/index.ts');
    await broker.start();
    expect((await broker.request('Hello World!', 'hello')).body).toBe('Hi there too');
    expect((await broker.request({ numbers: [1, 2, 3] }, 'sum')).body).toEqual({ sum: 6 });
    await broker.publish({ job: 1 }, 'flaky');
    const conn = testConnection();
    const dead = await (async () => {
      for (let i = 0; i < 300; i++) {
        const m = await conn.basicGet({ queue: 'cloudmom-example.dead-letter', noAck: true });
        if (m) return m;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('no dead letter');
    })();
    expect(dead.headers?.dead_letter_reason).toBe('handler-failed');
    expect(dead.headers?.delivery_count).toBe('5');
    expect(String(dead.headers?.dead_letter_description)).toContain(
      'downstream service unavailable',
    );
    const err = await broker.publish('x', 'not-bound').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendError);
    expect((err as SendError).cause).toBeInstanceOf(UnroutableError);
    await broker.stop();
  }, 60_000);
});
