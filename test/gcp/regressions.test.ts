/**
 * Regression tests of issue 9 on Pub/Sub (each failed before its fix), on pstest:
 * - defect 5: a fixed `instanceId` restarted after a crash finds its reply subscription
 *   existing (ALREADY_EXISTS) and `request()` must still work;
 * - defect 6: a header named `__proto__` (or `constructor`) is data and round-trips: received
 *   over streaming pull and push, sent by the transport, kept on dead-letter copies;
 * and the provisioned reply subscription (`replySubscription`) infra/gcp's least-privilege
 * requesters use (defect 8): used as is, never created nor deleted.
 */
import { createServer } from 'node:http';
import type { Message } from '@google-cloud/pubsub';
import { InvalidArgumentError, type Properties } from 'cloudmom';
import { pushHandler } from 'cloudmom/gcp';
import { afterEach, describe, expect, it } from 'vitest';
import { INTERNALS } from '../../src/broker.ts';
import type { OutgoingMessage } from '../../src/transport.ts';
import { emulatorClient, PROJECT, topology, until } from './fixture.ts';
import { listen, post } from './http.ts';

const client = emulatorClient();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function world() {
  const t = await topology(client);
  cleanups.push(() => t.cleanup());
  const broker = (o: Parameters<typeof t.broker>[0] = {}) => {
    const b = t.broker({ logger: false, ...o });
    cleanups.push(() => b.stop());
    return b;
  };
  return { t, broker };
}

const subscriptionNames = async (topic: string) =>
  (await client.topic(topic).getSubscriptions())[0].map((s) => s.name);

/** Headers as JSON.parse makes them: `__proto__` an own property. */
const awkward = (): Record<string, string> =>
  JSON.parse('{"__proto__":"proto-value","constructor":"ctor-value","toString":"ts","x":"y"}');

function expectAwkward(headers: Readonly<Record<string, string>>) {
  expect(Object.keys(headers).sort()).toEqual(['__proto__', 'constructor', 'toString', 'x']);
  expect(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value).toBe('proto-value');
  expect(headers.constructor).toBe('ctor-value');
  expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
}

describe('issue 9 defect 5: a fixed instanceId restarted after a crash', () => {
  it('reuses the reply subscription the crashed instance left (ALREADY_EXISTS), then deletes it on stop', async () => {
    const { t, broker } = await world();
    const responder = broker();
    responder.add('echo', (_p, body: string) => body);
    await responder.start();
    // What the crashed instance left: its subscription, with a stale reply in it.
    const name = `${t.replyTopic}-fixed-1`;
    await client.createSubscription(t.replyTopic, name, {
      filter: 'attributes.reply_key = "fixed-1"',
    });
    await client.topic(t.replyTopic).publishMessage({
      data: Buffer.from('"stale"'),
      attributes: {
        target: 'reply',
        content_type: 'application/json',
        correlation_id: 'from-before-the-crash',
        reply_key: 'fixed-1',
      },
    });
    const restarted = broker({ subscription: undefined, instanceId: 'fixed-1' });
    const stray: unknown[] = [];
    restarted.add('reply', (_p, body) => void stray.push(body));
    expect((await restarted.request('after the restart', 'echo')).body).toBe('after the restart');
    await until('the stale reply on target "reply"', () => stray[0]);
    expect(stray).toEqual(['stale']);
    await restarted.stop();
    expect(await subscriptionNames(t.replyTopic)).not.toContain(
      `projects/${PROJECT}/subscriptions/${name}`,
    );
  });

  it('refuses a subscription of that name that is not its own (another filter), saying why', async () => {
    const { t, broker } = await world();
    const name = `${t.replyTopic}-fixed-2`;
    await client.createSubscription(t.replyTopic, name, {
      filter: 'attributes.reply_key = "someone-else"',
    });
    cleanups.push(() => client.subscription(name).delete());
    const b = broker({ subscription: undefined, instanceId: 'fixed-2' });
    const err = await b.request('x', 'echo', { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/exists .*filter.*someone-else/);
    await b.stop();
    // not ours: left alone
    expect(await subscriptionNames(t.replyTopic)).toContain(
      `projects/${PROJECT}/subscriptions/${name}`,
    );
  });
});

describe('replySubscription: a provisioned reply subscription (least-privilege requesters)', () => {
  it('is used as is and neither created nor deleted', async () => {
    const { t, broker } = await world();
    const responder = broker();
    responder.add('echo', (_p, body: string) => body);
    await responder.start();
    const name = `${t.replyTopic}-provisioned`;
    await client.createSubscription(t.replyTopic, name, {
      filter: 'attributes.reply_key = "api-1"',
    });
    cleanups.push(() => client.subscription(name).delete());
    const b = broker({ subscription: undefined, instanceId: 'api-1', replySubscription: name });
    expect((await b.request('hello', 'echo')).body).toBe('hello');
    await b.stop();
    expect(await subscriptionNames(t.replyTopic)).toEqual([
      `projects/${PROJECT}/subscriptions/${name}`,
    ]);
    expect(() => broker({ replySubscription: name })).toThrow(/instanceId/);
  });
});

describe('issue 9 defect 6: headers named __proto__ or constructor are data', () => {
  it('arrive over streaming pull', async () => {
    const { t, broker } = await world();
    const b = broker();
    const seen: Properties[] = [];
    b.add('proto', (p) => void seen.push(p));
    await b.start();
    await client.topic(t.topic).publishMessage({
      data: Buffer.from('"x"'),
      attributes: { ...awkward(), target: 'proto', content_type: 'application/json' },
    });
    const p = await until('the message', () => seen[0]);
    expectAwkward(p.headers);
  });

  it('arrive through pushHandler', async () => {
    const { broker } = await world();
    const b = broker({ subscription: undefined });
    const seen: Properties[] = [];
    b.add('proto', (p) => void seen.push(p));
    const served = await listen(createServer(pushHandler(b)));
    cleanups.push(() => served.close());
    const res = await post(served.url, 'push', {
      data: Buffer.from('"x"').toString('base64'),
      attributes: { ...awkward(), target: 'proto', content_type: 'application/json' },
      messageId: 'proto-push-1',
    });
    expect(res.status).toBe(204);
    expectAwkward(seen[0]!.headers);
  });

  it('leave with a message the transport sends, and with a dead-letter copy', async () => {
    const { t, broker } = await world();
    const got: Message[] = [];
    const [sub] = await client.createSubscription(t.topic, `${t.topic}-proto-tap`);
    sub.on('message', (m: Message) => {
      got.push(m);
      m.ack();
    });
    cleanups.push(async () => {
      await sub.close();
      await sub.delete();
    });
    const transport = broker({ subscription: undefined })[INTERNALS].transport;
    const message: OutgoingMessage = {
      body: new TextEncoder().encode('"x"'),
      target: 'proto',
      messageId: 'proto-send-1',
      contentType: 'application/json',
      headers: awkward(),
    };
    const copy: OutgoingMessage = {
      ...message,
      target: '',
      destination: `projects/${PROJECT}/topics/${t.deadLetterTopic}`,
      deadLetter: { code: 'handler-failed', description: 'boom', deliveryCount: 3 },
    };
    expect((await transport.send([message]))[0]).toMatchObject({ ok: true });
    expect((await transport.send([copy]))[0]).toMatchObject({ ok: true });
    const sent = await until('the message', () => got[0]);
    expect(Object.getOwnPropertyDescriptor(sent.attributes, '__proto__')?.value).toBe(
      'proto-value',
    );
    expect(sent.attributes.constructor).toBe('ctor-value');
    const d = await until('the dead letter', () =>
      t.deadLetters.find((x) => x.attributes.message_id === 'proto-send-1'),
    );
    expect(Object.getOwnPropertyDescriptor(d.attributes, '__proto__')?.value).toBe('proto-value');
    expect(d.attributes).toMatchObject({
      constructor: 'ctor-value',
      dead_letter_reason: 'handler-failed',
      dead_letter_description: 'boom',
      delivery_count: '3',
    });
    expect(d.attributes.target).toBeUndefined(); // a copy of a message without a target
  });
});
