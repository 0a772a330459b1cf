/**
 * PubSubBroker beyond the conformance suite, on pstest: the attribute mapping and Pub/Sub's
 * limits, ordering keys and resumePublishing, filtered subscriptions, per-instance reply
 * subscriptions on a shared reply topic, the injected client, delivery counts.
 */
import type { Message } from '@google-cloud/pubsub';
import {
  CloudmomError,
  InvalidArgumentError,
  InvalidMessageError,
  MessageTooLargeError,
} from 'cloudmom';
import { PubSubBroker, targetFilter } from 'cloudmom/gcp';
import { afterEach, describe, expect, it } from 'vitest';
import { emulatorClient, PROJECT, topology, until } from './fixture.ts';

const client = emulatorClient();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function world(options: Parameters<typeof topology>[1] = {}) {
  const t = await topology(client, options);
  cleanups.push(() => t.cleanup());
  const broker = (o: Parameters<typeof t.broker>[0] = {}) => {
    const b = t.broker({ logger: false, ...o });
    cleanups.push(() => b.stop());
    return b;
  };
  return { t, broker };
}

/** Streams a subscription of ours into an array. */
async function tap(topic: string, name: string, filter?: string, ordered = false) {
  const [sub] = await client.createSubscription(topic, name, {
    ...(filter ? { filter } : {}),
    ...(ordered ? { enableMessageOrdering: true } : {}),
  });
  const got: Message[] = [];
  sub.on('message', (m: Message) => {
    got.push(m);
    m.ack();
  });
  sub.on('error', () => {});
  cleanups.push(async () => {
    await sub.close();
    await sub.delete();
  });
  return got;
}

describe('PubSubBroker', () => {
  it('writes the ARCHITECTURE §3 attributes; groupKey becomes the ordering key', async () => {
    const { t, broker } = await world();
    const got = await tap(t.topic, `${t.topic}-tap`);
    const b = broker({ subscription: undefined });
    const id = await b.publish({ a: 1 }, 'orders', {
      correlationId: 'c-1',
      replyTo: 'projects/p/topics/x#k',
      headers: { tenant: 't1' },
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      groupKey: 'customer-7',
    });
    const m = await until('the message', () => got[0]);
    expect(m.id).toBe(id);
    expect(m.attributes).toEqual({
      target: 'orders',
      content_type: 'application/json',
      correlation_id: 'c-1',
      reply_to: 'projects/p/topics/x#k',
      tenant: 't1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    expect(m.orderingKey).toBe('customer-7');
    expect(JSON.parse(m.data.toString())).toEqual({ a: 1 });
  });

  it('one turn of keyed and unkeyed publishes: every id is its message, each key in order', async () => {
    const { t, broker } = await world();
    const got = await tap(t.topic, `${t.topic}-mix`, undefined, true);
    const b = broker({ subscription: undefined });
    // 600 in one turn: 400 without a key (one Publish request), 200 on two ordering keys
    const ids = await Promise.all(
      Array.from({ length: 600 }, (_, i) =>
        b.publish({ i }, 'mix', i % 3 === 0 ? { groupKey: `k${i % 2}` } : {}),
      ),
    );
    expect(new Set(ids).size).toBe(600);
    await until('all 600', () => got.length >= 600 || undefined, 20_000);
    const byId = new Map(got.map((m) => [m.id, m]));
    const seq: Record<string, number[]> = { k0: [], k1: [] };
    ids.forEach((id, i) => {
      const m = byId.get(id);
      expect(m, `message ${i}`).toBeDefined();
      expect(JSON.parse(m!.data.toString())).toEqual({ i });
      expect(m!.attributes.target).toBe('mix');
      expect(m!.orderingKey || undefined).toBe(i % 3 === 0 ? `k${i % 2}` : undefined);
    });
    for (const m of got)
      if (m.orderingKey) seq[m.orderingKey]!.push(JSON.parse(m.data.toString()).i);
    for (const key of ['k0', 'k1']) {
      expect(seq[key]!.length).toBe(100);
      expect(seq[key]).toEqual([...seq[key]!].sort((x, y) => x - y));
    }
  });

  it("refuses what Pub/Sub would refuse, before sending: attribute count, sizes, 'goog' names, reserved names", async () => {
    const { broker } = await world();
    const b = broker({ subscription: undefined });
    const many: Record<string, string> = {};
    for (let i = 0; i < 99; i++) many[`h${i}`] = 'v';
    const cases: [string, Parameters<typeof b.publish>[2]][] = [
      ['101 attributes', { headers: many }],
      ['key of 257 bytes', { headers: { ['k'.repeat(257)]: 'v' } }],
      ['value of 1025 bytes', { headers: { k: 'v'.repeat(1025) } }],
      ['multi-byte value over 1024 bytes', { headers: { k: 'é'.repeat(513) } }],
      ['goog prefix', { headers: { googThing: 'v' } }],
      ['reply_key is the adapter’s', { headers: { reply_key: 'v' } }],
      ['correlation id over 1024 bytes', { correlationId: 'c'.repeat(1025) }],
      ['ordering key over 1024 bytes', { groupKey: 'g'.repeat(1025) }],
      ['a delay', { delaySeconds: 1 }],
    ];
    for (const [why, options] of cases)
      await expect(b.publish('x', 't', options), why).rejects.toBeInstanceOf(InvalidMessageError);
    // At the limits exactly, it goes.
    const ok: Record<string, string> = {};
    for (let i = 0; i < 97; i++) ok[`h${i}`] = 'v'; // + 1 below + target + content_type = 100
    ok['k'.repeat(256)] = 'v'.repeat(1024);
    await expect(b.publish('x', 't', { headers: ok })).resolves.toMatch(/.+/);
    await expect(b.publish(new Uint8Array(10_000_001), 't')).rejects.toBeInstanceOf(
      MessageTooLargeError,
    );
  });

  it('carries a message near 10 MB', async () => {
    const { broker } = await world();
    const consumer = broker();
    let got: Uint8Array | undefined;
    consumer.add('big', (_p, body: Uint8Array) => {
      got = body;
    });
    await consumer.start();
    const body = new Uint8Array(9_900_000).map((_, i) => i % 251);
    await consumer.publish(body, 'big');
    await until('the big message', () => got, 20_000);
    expect(got!.byteLength).toBe(body.byteLength);
    expect(Buffer.compare(Buffer.from(got!), Buffer.from(body))).toBe(0);
  });

  it('a missing topic fails the publish with not-found (not the construction); the ordering key resumes after it', async () => {
    const name = `missing-${Date.now()}`;
    const b = new PubSubBroker({ client, projectId: PROJECT, topic: name, logger: false });
    cleanups.push(() => b.stop());
    for (const options of [{ groupKey: 'k' }, {}]) {
      const err = await b.publish('1', 'x', options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CloudmomError);
      expect((err as CloudmomError).code).toBe('not-found');
      expect((err as CloudmomError).retryable).toBe(false); // NOT_FOUND
    }
    await client.createTopic(name);
    cleanups.push(() => client.topic(name).delete());
    await expect(b.publish('2', 'x', { groupKey: 'k' })).resolves.toMatch(/.+/);
  });

  it('routes one target per subscription with targetFilter', async () => {
    const { t, broker } = await world();
    expect(targetFilter('billing')).toBe('attributes.target = "billing"');
    expect(targetFilter('a', 'b')).toBe('attributes.target = "a" OR attributes.target = "b"');
    expect(() => targetFilter('a"b')).toThrow(InvalidArgumentError);
    const subs = ['billing', 'shipping'].map((target) => `${t.topic}-${target}`);
    await client.createSubscription(t.topic, subs[0]!, { filter: targetFilter('billing') });
    await client.createSubscription(t.topic, subs[1]!, { filter: targetFilter('shipping') });
    cleanups.push(() => Promise.all(subs.map((s) => client.subscription(s).delete())));
    const seen: Record<string, string[]> = { billing: [], shipping: [] };
    for (const [i, target] of ['billing', 'shipping'].entries()) {
      const b = broker({ subscription: subs[i] });
      // Each registers both targets; the filter decides what reaches it.
      for (const x of ['billing', 'shipping'])
        b.add(x, (_p, body: string) => {
          seen[target]!.push(`${x}:${body}`);
        });
      await b.start();
    }
    const pub = broker({ subscription: undefined });
    await Promise.all([
      pub.publish('1', 'billing'),
      pub.publish('2', 'shipping'),
      pub.publish('3', 'billing'),
    ]);
    await until('three messages', () => seen.billing!.length + seen.shipping!.length >= 3);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.billing!.sort()).toEqual(['billing:1', 'billing:3']);
    expect(seen.shipping).toEqual(['shipping:2']);
  });

  it('several instances share a reply topic: each gets its own replies; subscriptions go on stop', async () => {
    const { t, broker } = await world();
    const responder = broker();
    responder.add('whoami', (_p, body: { from: string; n: number }) => body);
    await responder.start();
    const a = broker({ subscription: undefined, instanceId: 'instance-a' });
    const b = broker({ subscription: undefined, instanceId: 'instance-b' });
    expect(a.replyAddress).toBe(`projects/${PROJECT}/topics/${t.replyTopic}#instance-a`);
    const stray: unknown[] = [];
    for (const x of [a, b]) x.add('reply', (_p, body) => void stray.push(body));
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, n) => {
        const from = n % 2 ? 'a' : 'b';
        return (from === 'a' ? a : b).request({ from, n }, 'whoami').then((r) => ({ from, r }));
      }),
    );
    for (const { from, r } of replies) expect((r.body as { from: string }).from).toBe(from);
    expect(stray).toEqual([]);
    const names = async () =>
      (await client.topic(t.replyTopic).getSubscriptions())[0].map((s) => s.name);
    expect(await names()).toEqual(
      expect.arrayContaining([
        `projects/${PROJECT}/subscriptions/${t.replyTopic}-instance-a`,
        `projects/${PROJECT}/subscriptions/${t.replyTopic}-instance-b`,
      ]),
    );
    await a.stop();
    await b.stop();
    expect(await names()).toEqual([]);
  });

  it('counts deliveries itself where the subscription has no dead-letter policy', async () => {
    const t = await topology(client);
    cleanups.push(() => t.cleanup());
    const plain = `${t.topic}-plain`;
    await client.createSubscription(t.topic, plain);
    cleanups.push(() => client.subscription(plain).delete());
    const b = t.broker({ subscription: plain, logger: false, maxDeliveries: 3 });
    cleanups.push(() => b.stop());
    const counts: number[] = [];
    b.add('flaky', (p) => {
      counts.push(p.deliveryCount);
      throw new Error('always');
    });
    await b.start();
    await b.publish({ n: 1 }, 'flaky');
    const d = await until('the dead letter', () =>
      t.deadLetters.find((x) => x.attributes.target === 'flaky'),
    );
    expect(counts).toEqual([1, 2, 3]);
    expect(d.attributes.dead_letter_reason).toBe('handler-failed');
  });

  it('reopens a subscription stream that failed: a consumer started before its subscription exists', async () => {
    const t = await topology(client);
    cleanups.push(() => t.cleanup());
    const late = `${t.topic}-late`;
    const b = t.broker({ subscription: late, logger: false });
    cleanups.push(() => b.stop());
    const seen: string[] = [];
    b.add('late', (_p, body: string) => void seen.push(body));
    await b.start(); // NOT_FOUND: the client closes the stream; the broker reopens it
    await new Promise((r) => setTimeout(r, 300));
    await client.createSubscription(t.topic, late);
    cleanups.push(() => client.subscription(late).delete());
    await b.publish('finally', 'late');
    await until('the message on the late subscription', () => seen[0], 15_000);
    expect(seen).toEqual(['finally']);
  });

  it('exposes and accepts the native client; checks its options', async () => {
    const { broker } = await world();
    const b = broker();
    expect(b.client).toBe(client);
    expect(b.projectId).toBe(PROJECT);
    expect(() => new PubSubBroker({ topic: 't', projectId: 'p', clent: 1 } as never)).toThrow(
      InvalidArgumentError,
    );
    expect(() => new PubSubBroker({} as never)).toThrow(InvalidArgumentError);
    expect(() => new PubSubBroker({ topic: 't', projectId: 'p', instanceId: 'bad id!' })).toThrow(
      InvalidArgumentError,
    );
    const saved = { ...process.env };
    delete process.env.GOOGLE_CLOUD_PROJECT;
    delete process.env.GCLOUD_PROJECT;
    delete process.env.PUBSUB_PROJECT_ID;
    try {
      expect(() => new PubSubBroker({ topic: 't' })).toThrow(/project/);
      const full = new PubSubBroker({ topic: 'projects/from-name/topics/t', logger: false });
      expect(full.projectId).toBe('from-name');
      expect(full.topic).toBe('projects/from-name/topics/t');
      await full.stop();
    } finally {
      Object.assign(process.env, saved);
    }
    const noReply = new PubSubBroker({ client, projectId: PROJECT, topic: 't', logger: false });
    cleanups.push(() => noReply.stop());
    await expect(noReply.request('x', 'y')).rejects.toThrow(/replyTopic/);
  });
});
