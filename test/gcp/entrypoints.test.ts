/**
 * The entrypoints against the real functions-framework server (in-process, on 127.0.0.1) and
 * a plain node:http server, with pstest behind the broker: CloudEvents in binary and
 * structured mode, push requests, failures, poison, replies before the answer.
 */
import { createServer } from 'node:http';
import * as functions from '@google-cloud/functions-framework';
import type { Message } from '@google-cloud/pubsub';
import type { Properties } from 'cloudmom';
import { cloudEventHandler, type PubSubBroker, pushHandler } from 'cloudmom/gcp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { emulatorClient, PROJECT, type Topology, topology, until } from './fixture.ts';
import { bridge, listen, type Mode, post, type Served, serveFunction } from './http.ts';

const client = emulatorClient();
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64');
let seq = 0;
const nextId = () => `ep-${Date.now()}-${seq++}`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function world(options: Parameters<typeof topology>[1] = {}) {
  const t = await topology(client, options);
  cleanups.push(() => t.cleanup());
  const responder = t.broker({ subscription: undefined, logger: false, maxDeliveries: 3 });
  cleanups.push(() => responder.stop());
  return { t, responder };
}

function deadLetterOf(t: Topology, id: string) {
  return until(`the dead letter of ${id}`, () =>
    t.deadLetters.find((d) => d.attributes.message_id === id),
  );
}

let fnCount = 0;
async function serveCloudEvent(broker: PubSubBroker): Promise<Served> {
  const name = `ce-${fnCount++}`;
  functions.cloudEvent(name, cloudEventHandler(broker));
  const served = await serveFunction(name);
  cleanups.push(() => served.close());
  return served;
}

describe('cloudEventHandler on the functions-framework server', () => {
  for (const mode of ['binary', 'structured'] as const) {
    it(`request() is answered through Eventarc-style delivery (${mode} mode)`, async () => {
      const { t, responder } = await world();
      const seen: Properties[] = [];
      responder.add('hello', (p) => {
        seen.push(p);
        return 'Hi there too';
      });
      const fn = await serveCloudEvent(responder);
      const b = bridge(client, t.subscription, fn.url, mode);
      cleanups.push(() => b.stop());
      const requester = t.broker({ subscription: undefined, logger: false });
      cleanups.push(() => requester.stop());
      const reply = await requester.request('Hello World!', 'hello', {
        headers: { tenant: 'a' },
        groupKey: 'g1',
      });
      expect(reply.body).toBe('Hi there too');
      expect(seen[0]!.headers).toEqual({ tenant: 'a' });
      expect(seen[0]!.groupKey).toBe('g1');
      expect(seen[0]!.publishedAt).toBeInstanceOf(Date);
      expect(seen[0]!.deliveryCount).toBe(1);
      expect(b.statuses.every((s) => s >= 200 && s < 300)).toBe(true);
    });
  }

  it('a failing handler answers 500; Pub/Sub redelivers until the subscription dead-letters it', async () => {
    const { t, responder } = await world({ maxDeliveryAttempts: 5 });
    let calls = 0;
    responder.add('boom', () => {
      calls++;
      throw new Error('downstream unavailable');
    });
    const fn = await serveCloudEvent(responder);
    const direct = await post(fn.url, 'binary', {
      data: b64('"x"'),
      attributes: { target: 'boom', content_type: 'application/json' },
      messageId: nextId(),
    });
    expect(direct.status).toBe(500);
    const b = bridge(client, t.subscription, fn.url, 'binary');
    cleanups.push(() => b.stop());
    await client.topic(t.topic).publishMessage({
      data: Buffer.from('"y"'),
      attributes: { target: 'boom', content_type: 'application/json' },
    });
    // CloudEvents carry no deliveryAttempt: the subscription's policy (5 attempts) stops it.
    const d = await until('the message in the dead-letter topic', () =>
      t.deadLetters.find((x) => x.data.toString() === '"y"'),
    );
    expect(d.attributes.dead_letter_reason).toBeUndefined();
    expect(calls).toBe(1 + 5);
    expect(b.statuses.filter((s) => s === 500).length).toBe(5);
  });

  it('poison is acknowledged after it is published to the dead-letter topic with its reason', async () => {
    const { t, responder } = await world();
    const handled: unknown[] = [];
    responder.add('json', (_p, body) => {
      handled.push(body);
    });
    const fn = await serveCloudEvent(responder);
    const cases = [
      { data: 'not base64!!', attributes: { target: 'json' }, code: 'undecodable' },
      {
        data: b64('{oops'),
        attributes: { target: 'json', content_type: 'application/json' },
        code: 'undecodable',
      },
      {
        data: b64('"no target"'),
        attributes: { content_type: 'application/json' },
        code: 'missing-target',
      },
      {
        data: b64('"evil"'),
        attributes: { target: 'json', reply_to: `projects/${PROJECT}/topics/elsewhere` },
        code: 'reply-not-allowed',
      },
    ];
    for (const c of cases) {
      const id = nextId();
      const res = await post(fn.url, 'structured', {
        data: c.data,
        attributes: c.attributes,
        messageId: id,
      });
      expect(res.status, c.code).toBeGreaterThanOrEqual(200);
      expect(res.status, c.code).toBeLessThan(300);
      // Published before the function answered: already in the dead-letter topic.
      const d = await deadLetterOf(t, id);
      expect(d.attributes.dead_letter_reason).toBe(c.code);
      expect(d.attributes.dead_letter_description).toBeTruthy();
      expect(d.message.publishTime.getTime()).toBeLessThanOrEqual(Date.now());
    }
    expect(handled).toEqual([]);
  });

  it('replies are published before the function returns', async () => {
    const { t, responder } = await world();
    responder.add('sum', (_p, body: { numbers: number[] }) => ({
      sum: body.numbers.reduce((a, b) => a + b, 0),
    }));
    const fn = await serveCloudEvent(responder);
    const [sub] = await client.createSubscription(t.replyTopic, `${t.replyTopic}-probe`, {
      filter: 'attributes.reply_key = "probe"',
    });
    cleanups.push(async () => {
      await sub.delete();
    });
    const replies: Message[] = [];
    sub.on('message', (m: Message) => {
      replies.push(m);
      m.ack();
    });
    cleanups.push(() => sub.close());
    const res = await post(fn.url, 'binary', {
      data: b64(JSON.stringify({ numbers: [1, 2, 3] })),
      attributes: {
        target: 'sum',
        content_type: 'application/json',
        correlation_id: 'corr-7',
        reply_to: `projects/${PROJECT}/topics/${t.replyTopic}#probe`,
      },
      messageId: nextId(),
    });
    const answeredAt = Date.now();
    expect(res.status).toBeLessThan(300);
    const reply = await until('the reply', () => replies[0]);
    expect(reply.publishTime.getTime()).toBeLessThanOrEqual(answeredAt);
    expect(JSON.parse(reply.data.toString())).toEqual({ sum: 6 });
    expect(reply.attributes).toMatchObject({
      target: 'reply',
      correlation_id: 'corr-7',
      reply_key: 'probe',
    });
  });

  it('the example app deploys as examples/gcp: one push function per service, each behind its filtered subscription', async () => {
    const { topology: example } = await import('../../examples/topology.ts');
    const { targetFilter } = await import('cloudmom/gcp');
    const greeterTargets = example.service('greeter').targets.map((x) => x.name);
    // the greeter's subscription as infra/gcp makes it: filtered on the greeter's targets
    const t = await topology(client, { filter: targetFilter(...greeterTargets) });
    cleanups.push(() => t.cleanup());
    Object.assign(process.env, {
      GOOGLE_CLOUD_PROJECT: PROJECT,
      CLOUDMOM_TOPIC: t.topic,
      CLOUDMOM_DEAD_LETTER_TOPIC: t.deadLetterTopic,
      CLOUDMOM_REPLY_TOPIC: t.replyTopic,
    });
    const app = await import('../../examples/gcp/index.ts');
    cleanups.push(async () => {
      for (const b of Object.values(app.brokers)) await b.stop();
    });
    expect(Object.keys(app.brokers).sort()).toEqual(example.services.map((x) => x.name).sort());
    const greeter = await serveFunction('greeter');
    cleanups.push(() => greeter.close());
    const b = bridge(client, t.subscription, greeter.url, 'push');
    cleanups.push(() => b.stop());
    const requester = t.broker({ subscription: undefined, logger: false });
    cleanups.push(() => requester.stop());
    const reply = await requester.request({ numbers: [1, 2, 3, 4] }, 'sum');
    expect(reply.body).toEqual({ sum: 10 });
    // a worker target never reaches the greeter's subscription
    await requester.publish({ event: 'login' }, 'audit');
    await requester.publish('Hello World!', 'hello');
    await until('the hello delivered', () => b.statuses.length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(b.statuses).toEqual([204, 204]); // sum and hello; audit was filtered out
    const worker = await serveFunction('worker');
    cleanups.push(() => worker.close());
    const res = await post(worker.url, 'push', {
      data: b64('{"event":"login"}'),
      attributes: { target: 'audit', content_type: 'application/json' },
      messageId: nextId(),
    });
    expect(res.status).toBe(204);
  });
});

it('a message near 10 MB goes through both entrypoints', async () => {
  const { responder } = await world();
  const sizes: number[] = [];
  responder.add('big', (_p, body: Uint8Array) => void sizes.push(body.byteLength));
  const fn = await serveCloudEvent(responder);
  const push = await listen(createServer(pushHandler(responder)));
  cleanups.push(() => push.close());
  const data = b64(new Uint8Array(9_900_000).map((_, i) => i % 251));
  const message = () => ({
    data,
    attributes: { target: 'big', content_type: 'application/octet-stream' },
    messageId: nextId(),
  });
  expect((await post(fn.url, 'binary', message())).status).toBeLessThan(300);
  expect((await post(push.url, 'push', message())).status).toBe(204);
  expect(sizes).toEqual([9_900_000, 9_900_000]);
}, 60_000);

describe('pushHandler on node:http', () => {
  let served: Served;
  let t: Topology;
  let responder: PubSubBroker;
  const seen: Properties[] = [];
  beforeAll(async () => {
    t = await topology(client);
    responder = t.broker({ subscription: undefined, logger: false, maxDeliveries: 3 });
    responder.add('ok', (p) => {
      seen.push(p);
    });
    responder.add('fails', (p) => {
      seen.push(p);
      throw new TypeError('database unreachable');
    });
    served = await listen(createServer(pushHandler(responder, { maxRequestBytes: 64 * 1024 })));
  });
  afterAll(async () => {
    await served.close();
    await responder.stop();
    await t.cleanup();
  });

  it('2xx acks a handled message; deliveryAttempt becomes deliveryCount', async () => {
    const id = nextId();
    const res = await post(
      served.url,
      'push',
      {
        data: b64('"hi"'),
        attributes: { target: 'ok', content_type: 'application/json', x: 'y' },
        message_id: id,
        publish_time: '2026-01-02T03:04:05.000Z',
      },
      { deliveryAttempt: 2 },
    );
    expect(res.status).toBe(204);
    const p = seen.find((s) => s.messageId === id)!;
    expect(p.deliveryCount).toBe(2);
    expect(p.headers).toEqual({ x: 'y' });
    expect(p.publishedAt?.toISOString()).toBe('2026-01-02T03:04:05.000Z');
  });

  it('a failing handler answers 500 until maxDeliveries, then dead-letters with the error', async () => {
    const id = nextId();
    const message = {
      data: b64('{"order":7}'),
      attributes: { target: 'fails', content_type: 'application/json' },
      messageId: id,
    };
    for (const attempt of [1, 2]) {
      const res = await post(served.url, 'push', message, { deliveryAttempt: attempt });
      expect(res.status).toBe(500);
    }
    const last = await post(served.url, 'push', message, { deliveryAttempt: 3 });
    expect(last.status).toBe(204);
    const d = await deadLetterOf(t, id);
    expect(d.attributes.dead_letter_reason).toBe('handler-failed');
    expect(d.attributes.dead_letter_description).toContain('TypeError: database unreachable');
    expect(JSON.parse(d.data.toString())).toEqual({ order: 7 });
  });

  it('bad requests: non-JSON is dead-lettered whole, GET is 405, oversize is 413', async () => {
    const before = t.deadLetters.length;
    const garbage = await fetch(served.url, { method: 'POST', body: 'definitely not json' });
    expect(garbage.status).toBe(204);
    const d = await until('the dead-lettered body', () =>
      t.deadLetters.slice(before).find((x) => x.data.toString() === 'definitely not json'),
    );
    expect(d.attributes.dead_letter_reason).toBe('undecodable');
    expect((await fetch(served.url)).status).toBe(405);
    const big = await post(served.url, 'push', {
      data: b64(new Uint8Array(100 * 1024)),
      attributes: { target: 'ok' },
      messageId: nextId(),
    });
    expect(big.status).toBe(413);
  });

  it('end to end: a push subscription redelivers a failing message with growing deliveryAttempt', async () => {
    const w = await world({ maxDeliveryAttempts: 5 });
    const counts: number[] = [];
    w.responder.add('flaky', (p) => {
      counts.push(p.deliveryCount);
      if (p.deliveryCount < 3) throw new Error('not yet');
    });
    const s = await listen(createServer(pushHandler(w.responder)));
    cleanups.push(() => s.close());
    const b = bridge(client, w.t.subscription, s.url, 'push' satisfies Mode);
    cleanups.push(() => b.stop());
    await w.responder.publish('x', 'flaky');
    await until('the third delivery', () => counts.length >= 3);
    expect(counts).toEqual([1, 2, 3]);
    expect(b.statuses.slice(0, 3)).toEqual([500, 500, 204]);
  });
});
