/**
 * Broker URLs: parseBrokerUrl (pure) for every scheme, the refusals, and createBroker for the
 * schemes that need no peer (memory, cloudflare's refusal, Service Bus's connection string checks).
 */
import { createBroker, InvalidArgumentError, MemoryBroker, parseBrokerUrl } from 'cloudmom';
import { describe, expect, it } from 'vitest';

describe('parseBrokerUrl', () => {
  it('reads memory:// with and without a queue', () => {
    expect(parseBrokerUrl('memory://').options).toEqual({});
    expect(parseBrokerUrl('memory://jobs?concurrency=3')).toMatchObject({
      platform: 'memory',
      broker: 'MemoryBroker',
      module: 'cloudmom',
      options: { queue: 'jobs', concurrency: 3 },
    });
  });

  it('reads sqs:// names, ARNs and queue URLs, with region, endpoint and dlq', () => {
    expect(parseBrokerUrl('sqs://orders')).toMatchObject({
      platform: 'sqs',
      broker: 'SqsBroker',
      module: 'cloudmom/aws',
      options: { queue: 'orders' },
    });
    expect(parseBrokerUrl('sqs://orders').aws).toBeUndefined();
    const arn = 'arn:aws:sqs:eu-west-1:123456789012:orders.fifo';
    expect(parseBrokerUrl(`sqs://${arn}`).options).toEqual({ queue: arn });
    expect(parseBrokerUrl('sqs://sqs.eu-west-1.amazonaws.com/123456789012/orders').options).toEqual(
      { queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders' },
    );
    const d = parseBrokerUrl(
      'sqs://orders?region=eu-west-1&endpoint=http://127.0.0.1:5000&dlq=orders-dlq&waitTimeSeconds=1&maxDeliveries=3',
    );
    expect(d.aws).toEqual({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000' });
    expect(d.options).toEqual({
      queue: 'orders',
      deadLetterQueue: 'orders-dlq',
      waitTimeSeconds: 1,
      maxDeliveries: 3,
    });
  });

  it('reads sns:// with its queue', () => {
    expect(parseBrokerUrl('sns://events?queue=billing').options).toEqual({
      topic: 'events',
      queue: 'billing',
    });
  });

  it('reads servicebus:// queues and topic subscriptions', () => {
    expect(parseBrokerUrl('servicebus://my-ns/orders')).toMatchObject({
      namespace: 'my-ns',
      broker: 'ServiceBusBroker',
      options: { queue: 'orders' },
    });
    for (const u of [
      'servicebus://my-ns/events/billing',
      'servicebus://my-ns/events/Subscriptions/billing',
    ])
      expect(parseBrokerUrl(u).options).toEqual({ topic: 'events', subscription: 'billing' });
    expect(parseBrokerUrl('servicebus://127.0.0.2:5673/q?sessions=true').options).toEqual({
      queue: 'q',
      sessions: true,
    });
    expect(() => parseBrokerUrl('servicebus://my-ns')).toThrow(/namespace and a queue/);
    expect(() => parseBrokerUrl('servicebus://ns/a/b/c/d')).toThrow(InvalidArgumentError);
  });

  it('refuses a connection string in the URL, naming the environment variable', () => {
    expect(() => parseBrokerUrl('servicebus://ns/q?connectionString=Endpoint=sb://x')).toThrow(
      /SERVICEBUS_CONNECTION_STRING/,
    );
  });

  it('reads pubsub://, amqp://, amqps://, kafka:// and cloudflare://', () => {
    expect(parseBrokerUrl('pubsub://proj/events?subscription=a,b').options).toEqual({
      projectId: 'proj',
      topic: 'events',
      subscription: ['a', 'b'],
    });
    expect(parseBrokerUrl('pubsub://proj/events?subscription=a').options.subscription).toBe('a');
    const amqp = parseBrokerUrl('amqp://guest:secret@127.0.0.1:5672/vh?queue=orders&declare=false');
    expect(amqp.options).toEqual({
      url: 'amqp://guest:secret@127.0.0.1:5672/vh',
      queue: 'orders',
      declare: false,
    });
    expect(amqp.display).toBe('amqp://guest:***@127.0.0.1:5672/vh?queue=orders&declare=false');
    expect(amqp.display).not.toContain('secret');
    expect(parseBrokerUrl('amqps://h/').options.url).toBe('amqps://h/');
    expect(parseBrokerUrl('kafka://a:9092,b:9093/orders?groupId=g&tls=true').options).toEqual({
      brokers: ['a:9092', 'b:9093'],
      topic: 'orders',
      groupId: 'g',
      connection: { tls: {} },
    });
    expect(parseBrokerUrl('kafka://a:9092').options).toEqual({ brokers: ['a:9092'] });
    expect(parseBrokerUrl('cloudflare://orders').options).toEqual({ queueName: 'orders' });
  });

  it('refuses unknown parameters, naming the valid ones', () => {
    let err: unknown;
    try {
      parseBrokerUrl('sqs://orders?regoin=eu-west-1');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/"regoin"/);
    expect((err as Error).message).toMatch(/valid: .*region.*endpoint.*dlq/);
    expect(() => parseBrokerUrl('memory://q?region=x')).toThrow(/valid: /);
  });

  it('refuses bad values, repeated parameters, unknown schemes and non-URLs', () => {
    expect(() => parseBrokerUrl('sqs://q?waitTimeSeconds=soon')).toThrow(/whole number/);
    expect(() => parseBrokerUrl('sqs://q?dlq=a&dlq=b')).toThrow(/twice/);
    expect(() => parseBrokerUrl('sqs://q?endpoint=localhost')).toThrow(/http\(s\) URL/);
    expect(() => parseBrokerUrl('servicebus://n/q?sessions=maybe')).toThrow(/true or false/);
    expect(() => parseBrokerUrl('sqs://')).toThrow(/queue name/);
    expect(() => parseBrokerUrl('pubsub://proj')).toThrow(/project and a topic/);
    expect(() => parseBrokerUrl('kafka://nohost/t')).toThrow(/host:port/);
    expect(() => parseBrokerUrl('nats://x')).toThrow(/unknown broker URL scheme "nats:\/\/"/);
    expect(() => parseBrokerUrl('orders')).toThrow(/not a broker URL/);
    expect(() => parseBrokerUrl('')).toThrow(InvalidArgumentError);
  });
});

describe('createBroker', () => {
  it('builds a working MemoryBroker, the options winning over the URL', async () => {
    const broker = await createBroker('memory://cli-url-test?concurrency=2', {
      concurrency: 4,
      logger: false,
    });
    expect(broker).toBeInstanceOf(MemoryBroker);
    expect(broker.concurrency).toBe(4);
    broker.add('t', (_p, body: number) => body + 1);
    await broker.start();
    expect((await broker.request(1, 't')).body).toBe(2);
    await broker.stop();
  });

  it('refuses unknown option keys through the broker constructor', async () => {
    await expect(createBroker('memory://', { concurency: 3 } as never)).rejects.toThrow(
      /unknown option "concurency"/,
    );
  });

  it('refuses cloudflare:// without a binding, naming the fix', async () => {
    await expect(createBroker('cloudflare://orders')).rejects.toThrow(/inside a Worker/);
  });

  it('builds a CloudflareQueueBroker with the binding', async () => {
    const sent: unknown[] = [];
    const binding = {
      send: async (b: unknown) => void sent.push(b),
      sendBatch: async (ms: Iterable<{ body: unknown }>) => {
        for (const m of ms) sent.push(m.body);
      },
    };
    const broker = await createBroker('cloudflare://orders', { queue: binding, logger: false });
    expect(broker.constructor.name).toBe('CloudflareQueueBroker');
    await broker.publish({ n: 1 }, 'x');
    expect(sent).toHaveLength(1);
  });

  it('asks for the Service Bus connection string by its variable, and checks its namespace', async () => {
    const saved = process.env.SERVICEBUS_CONNECTION_STRING;
    delete process.env.SERVICEBUS_CONNECTION_STRING;
    try {
      await expect(createBroker('servicebus://my-ns/q')).rejects.toThrow(
        /set the environment variable SERVICEBUS_CONNECTION_STRING/,
      );
      const cs =
        'Endpoint=sb://other-ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=TOPSECRET';
      const err = await createBroker('servicebus://my-ns/q', { connectionString: cs }).catch(
        (e: Error) => e,
      );
      expect(String(err)).toMatch(/namespace other-ns\.servicebus\.windows\.net/);
      expect(String(err)).not.toContain('TOPSECRET');
      process.env.SERVICEBUS_CONNECTION_STRING = cs.replace('other-ns', 'my-ns');
      const b = await createBroker('servicebus://my-ns/q', { logger: false });
      expect(b.constructor.name).toBe('ServiceBusBroker');
      await b.stop();
    } finally {
      if (saved === undefined) delete process.env.SERVICEBUS_CONNECTION_STRING;
      else process.env.SERVICEBUS_CONNECTION_STRING = saved;
    }
  });

  it('builds SQS and SNS brokers with the client the URL describes', async () => {
    const sqs = await createBroker('sqs://orders?region=eu-central-1&endpoint=http://127.0.0.1:1', {
      logger: false,
    });
    expect(sqs.constructor.name).toBe('SqsBroker');
    expect(await (sqs.client as { config: { region(): Promise<string> } }).config.region()).toBe(
      'eu-central-1',
    );
    const sns = await createBroker('sns://events?queue=q&region=eu-central-1', { logger: false });
    expect(sns.constructor.name).toBe('SnsBroker');
  });
});
