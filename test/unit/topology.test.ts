import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { topology as example } from '../../examples/topology.ts';
import {
  defineTopology,
  InvalidArgumentError,
  MemoryBroker,
  type TopologyDefinition,
} from '../../src/index.ts';

const base: TopologyDefinition = {
  name: 'shop',
  services: { orders: { targets: ['order.created'] } },
};

function refused(def: unknown, message: RegExp): void {
  expect(() => defineTopology(def as TopologyDefinition)).toThrow(InvalidArgumentError);
  expect(() => defineTopology(def as TopologyDefinition)).toThrow(message);
}

describe('defineTopology', () => {
  it('fills in the defaults and derives the names', () => {
    const t = defineTopology(base);
    const s = t.service('orders');
    expect(s).toMatchObject({
      name: 'orders',
      maxDeliveries: 5,
      timeoutSeconds: 10,
      concurrency: 10,
      batchSize: 10,
      ordered: false,
      replies: true,
      queue: 'shop-orders',
      deadLetter: 'shop-orders-dead-letter',
      retry: { baseDelayMs: 250, maxDelayMs: 30_000 },
    });
    expect(s.lockSeconds).toBeUndefined();
    expect(t.replies).toEqual({ name: 'shop-replies', retentionSeconds: 3600 });
    expect(t.names('dev')).toEqual({
      prefix: 'shop-dev',
      topic: 'shop-dev',
      replies: 'shop-dev-replies',
      services: { orders: { queue: 'shop-dev-orders', deadLetter: 'shop-dev-orders-dead-letter' } },
    });
    expect(t.serviceOf('order.created')?.name).toBe('orders');
    expect(t.serviceOf('nope')).toBeUndefined();
  });

  it('lets a service override the defaults, key by key', () => {
    const t = defineTopology({
      name: 'shop',
      defaults: { maxDeliveries: 3, retry: { baseDelayMs: 100 }, concurrency: 4 },
      services: {
        a: { targets: ['x'] },
        b: { targets: ['y'], maxDeliveries: 9, retry: { maxDelayMs: 5000 }, ordered: true },
      },
    });
    expect(t.service('a')).toMatchObject({
      maxDeliveries: 3,
      concurrency: 4,
      retry: { baseDelayMs: 100 },
    });
    expect(t.service('b')).toMatchObject({
      maxDeliveries: 9,
      ordered: true,
      retry: { maxDelayMs: 5000, baseDelayMs: 250 },
    });
  });

  it('gives brokers their options: a broker built from it dead-letters after maxDeliveries', async () => {
    const t = defineTopology({
      ...base,
      defaults: { maxDeliveries: 2, retry: { baseDelayMs: 1, maxDelayMs: 2 } },
    });
    const opts = t.brokerOptions('orders', { stage: 'dev' });
    expect(opts).toEqual({
      maxDeliveries: 2,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
      concurrency: 10,
      unknownTarget: 'dead-letter',
      replyAllowList: ['shop-dev-replies'],
    });
    const broker = new MemoryBroker({ ...opts, logger: false });
    let calls = 0;
    broker.add('order.created', () => {
      calls++;
      throw new Error('no');
    });
    await broker.start();
    await broker.publish({}, 'order.created');
    for (let i = 0; i < 200 && broker.deadLetters().length === 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    await broker.stop();
    expect(calls).toBe(2);
    expect(broker.deadLetters()).toHaveLength(1);
  });

  it('keeps target definitions: descriptions, replies, schemas', () => {
    const schema = z.object({ n: z.number() });
    const t = defineTopology({
      name: 'shop',
      services: { a: { targets: { x: { description: 'X', schema }, y: { replies: false } } } },
    });
    expect(t.targets().map((x) => [x.name, x.replies, x.description])).toEqual([
      ['x', true, 'X'],
      ['y', false, undefined],
    ]);
    expect(t.targets()[0]?.schema).toBe(schema);
    expect(defineTopology({ ...base, replies: false }).service('orders').replies).toBe(false);
    expect(
      defineTopology({ ...base, replies: false }).brokerOptions('orders').replyAllowList,
    ).toEqual([]);
  });

  it('refuses unknown keys, naming the path and the known keys', () => {
    refused({ ...base, servicez: {} }, /defineTopology: unknown key "servicez" \(known: name/);
    refused(
      { name: 'shop', services: { orders: { targets: ['x'], maxDelivery: 3 } } },
      /services\.orders: unknown key "maxDelivery"/,
    );
    refused({ ...base, defaults: { targets: [] } }, /defaults: unknown key "targets"/);
    refused(
      { name: 'shop', services: { a: { targets: { x: { reply: true } } } } },
      /services\.a\.targets\.x: unknown key "reply"/,
    );
    refused({ ...base, defaults: { retry: { base: 1 } } }, /defaults\.retry: unknown key "base"/);
    refused({ ...base, replies: { ttl: 1 } }, /replies: unknown key "ttl"/);
  });

  it('refuses bad names and values', () => {
    refused({ ...base, name: 'Shop' }, /name: "Shop" must be 3–32 lower-case/);
    refused({ ...base, name: 'ab' }, /name/);
    refused({ ...base, name: 'a--b' }, /two hyphens/);
    refused({ name: 'shop', services: {} }, /services is empty/);
    refused({ name: 'shop', services: { Orders: { targets: ['x'] } } }, /the service name/);
    refused({ name: 'shop', services: { replies: { targets: ['x'] } } }, /collide/);
    refused({ name: 'shop', services: { a: { targets: [] } } }, /at least one target/);
    refused({ name: 'shop', services: { a: { targets: ['has space'] } } }, /not a valid name/);
    refused({ name: 'shop', services: { a: { targets: ['q#'] } } }, /not a valid name/);
    refused({ name: 'shop', services: { a: { targets: ['reply'] } } }, /reserved/);
    refused({ name: 'shop', services: { a: { targets: ['x', 'x'] } } }, /listed twice/);
    refused(
      { ...base, defaults: { maxDeliveries: 0 } },
      /maxDeliveries: 0 must be an integer from 1 to 100/,
    );
    refused({ ...base, defaults: { maxDeliveries: 2.5 } }, /maxDeliveries/);
    refused({ ...base, defaults: { timeoutSeconds: 901 } }, /timeoutSeconds/);
    refused({ ...base, retentionSeconds: 10 }, /retentionSeconds/);
    refused(
      { name: 'shop', services: { a: { targets: ['x'], ordered: 'yes' } } },
      /ordered: must be true or false/,
    );
    refused(
      { name: 'shop', services: { a: { targets: { x: { schema: {} } } } } },
      /not a Standard Schema/,
    );
    refused({ ...base, replyAllowList: [''] }, /replyAllowList\[0\]/);
  });

  it('refuses impossible combinations', () => {
    refused(
      { name: 'shop', services: { a: { targets: ['x'] }, b: { targets: ['y', 'x'] } } },
      /target "x" is already served by service "a"/,
    );
    refused(
      { ...base, defaults: { timeoutSeconds: 60, lockSeconds: 30 } },
      /lockSeconds \(30\) is shorter than timeoutSeconds \(60\)/,
    );
    refused(
      { ...base, defaults: { retry: { baseDelayMs: 500, maxDelayMs: 100 } } },
      /maxDelayMs is below/,
    );
    refused(
      { name: 'shop', replies: false, services: { a: { targets: { x: { replies: true } } } } },
      /replies is true but the topology has replies: false/,
    );
  });

  it('service() names the known services', () => {
    expect(() => defineTopology(base).service('nope')).toThrow(
      /has no service "nope" \(services: orders\)/,
    );
  });

  it('describes the example app: every target of examples/app.ts, once', () => {
    expect(
      example
        .targets()
        .map((t) => t.name)
        .sort(),
    ).toEqual(['audit', 'flaky', 'hello', 'sum']);
    expect(example.services.map((s) => s.name)).toEqual(['greeter', 'worker']);
    expect(Object.isFrozen(example)).toBe(true);
  });
});
