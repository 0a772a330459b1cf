/**
 * infra/amqp/definitions.json (generated from examples/topology.ts) loaded into the test node
 * with `rabbitmqctl import_definitions`, checked against what AmqpBroker declares from the same
 * topology, the service users' permissions tried, and the example app (examples/amqp) run
 * through it: replies, a dead-letter with its reason in the failing service's dead-letter
 * queue, an unroutable target refused.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendError } from 'cloudmom';
import { AmqpBroker, UnroutableError } from 'cloudmom/amqp';
import { Connection } from 'rabbitmq-client';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { deploy } from '../../examples/amqp/deploy.ts';
import { topology } from '../../examples/topology.ts';
import { amqpBrokerOptions } from '../../src/infra/amqp.ts';
import { rabbitmqctl } from '../emulators/amqp/rabbitmq.ts';
import { ROOT } from '../emulators/harness.ts';
import { closeTestConnection, testConnection, url } from './fixture.ts';

const ctl = inject('amqpCtl');
const FILE = join(ROOT, 'infra/amqp/definitions.json');
const defs = JSON.parse(readFileSync(FILE, 'utf8')) as {
  exchanges: { name: string }[];
  queues: { name: string }[];
  policies: { name: string }[];
  users: { name: string }[];
};
const names = topology.names();
const greeter = names.services.greeter!;
const worker = names.services.worker!;

afterAll(async () => {
  const conn = testConnection();
  for (const { name } of defs.queues) await conn.queueDelete({ queue: name }).catch(() => {});
  for (const { name } of defs.exchanges)
    await conn.exchangeDelete({ exchange: name }).catch(() => {});
  if (ctl) {
    for (const { name } of defs.policies) rabbitmqctl(ctl, ['clear_policy', name]);
    for (const { name } of defs.users) rabbitmqctl(ctl, ['delete_user', name]);
  }
  await closeTestConnection();
});

const list = (args: string[]) => rabbitmqctl(ctl!, [...args, '--quiet', '--no-table-headers']);

describe.runIf(ctl)('infra/amqp/definitions.json', () => {
  it('imports into RabbitMQ with rabbitmqctl import_definitions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cloudmom-defs-'));
    const file = join(dir, 'definitions.json');
    copyFileSync(FILE, file);
    try {
      rabbitmqctl(ctl!, ['import_definitions', file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const queues = list(['list_queues', 'name', 'type', 'arguments', 'policy']);
    for (const q of [greeter.queue, worker.queue]) {
      expect(queues).toMatch(new RegExp(`^${q}\\s+quorum\\s+.*x-delivery-limit.*\\s${q}$`, 'm'));
      expect(queues).toMatch(
        new RegExp(`^${q}-dead-letter\\s+quorum\\s.*\\s${q}-dead-letter$`, 'm'),
      );
    }
    expect(queues).toMatch(new RegExp(`^${names.replies}\\s+quorum\\s.*\\s${names.replies}$`, 'm'));
    const bindings = list(['list_bindings', 'source_name', 'destination_name', 'routing_key']);
    for (const [queue, keys] of [
      [greeter.queue, ['hello', 'sum']],
      [worker.queue, ['audit', 'flaky']],
    ] as const)
      for (const key of keys)
        expect(bindings).toMatch(new RegExp(`^${names.topic}\\s+${queue}\\s+${key}$`, 'm'));
    expect(bindings).toMatch(
      new RegExp(`^${greeter.deadLetter}\\s+${greeter.deadLetter}\\s*$`, 'm'),
    );
    const exchanges = list(['list_exchanges', 'name', 'type']);
    expect(exchanges).toMatch(new RegExp(`^${names.topic}\\s+topic$`, 'm'));
    expect(exchanges).toMatch(new RegExp(`^${worker.deadLetter}\\s+fanout$`, 'm'));
    const users = list(['list_users']);
    expect(users).toContain(greeter.queue);
  });

  it('is what AmqpBroker declares for the same topology (no PRECONDITION_FAILED)', async () => {
    for (const s of topology.services) {
      const b = new AmqpBroker({
        url: url(),
        ...amqpBrokerOptions(topology, s.name, deploy),
        declare: true,
        logger: false,
      });
      await b.start(); // the queues are empty: nothing to consume
      await b.stop();
    }
    // it bound the service's targets only (its default would be "#": every target)
    const bindings = list(['list_bindings', 'source_name', 'routing_key']);
    expect(bindings).not.toMatch(new RegExp(`^${names.topic}\\s+#$`, 'm'));
  });

  it('a service user reaches its own queue and the replies, not another service’s queue', async () => {
    rabbitmqctl(ctl!, ['change_password', greeter.queue, 'greeter-secret']);
    const own = new URL(url());
    own.username = greeter.queue;
    own.password = 'greeter-secret';
    const conn = new Connection({ url: own.href, retryLow: 100, retryHigh: 500 });
    conn.on('error', () => {});
    try {
      const other = await conn.basicGet({ queue: worker.queue }).catch((e: unknown) => e);
      expect(String((other as Error).message)).toMatch(/ACCESS_REFUSED/);
      const declare = await conn
        .queueDeclare({ queue: 'not-a-cloudmom-queue', durable: false })
        .catch((e: unknown) => e);
      expect(String((declare as Error).message)).toMatch(/ACCESS_REFUSED/);
      const b = new AmqpBroker({
        url: own.href,
        ...amqpBrokerOptions(topology, 'greeter', deploy),
        logger: false,
      });
      b.add('hello', (_p, body: string) => `Hi ${body}`);
      await b.start();
      expect((await b.request('Ada', 'hello')).body).toBe('Hi Ada');
      await b.stop();
    } finally {
      await conn.close();
    }
  }, 30_000);

  it('runs the example app through it: replies, dead-letter with reason, unroutable refused', async () => {
    process.env.AMQP_URL = url();
    const { mom } = await import('../../examples/amqp/index.ts');
    await mom.start();
    const broker = mom.get<AmqpBroker>('greeter');
    expect(broker.queue).toBe(greeter.queue);
    expect((await broker.request('Hello World!', 'hello')).body).toBe('Hi there too');
    expect((await broker.request({ numbers: [1, 2, 3] }, 'sum')).body).toEqual({ sum: 6 });
    await broker.publish({ job: 1 }, 'flaky'); // routed to the worker service's queue
    const conn = testConnection();
    const dead = await (async () => {
      for (let i = 0; i < 300; i++) {
        const m = await conn.basicGet({ queue: worker.deadLetter, noAck: true });
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
    expect(await conn.basicGet({ queue: greeter.deadLetter })).toBeUndefined();
    const err = await broker.publish('x', 'not-bound').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendError);
    expect((err as SendError).cause).toBeInstanceOf(UnroutableError);
    await mom.stop();
  }, 60_000);
});
