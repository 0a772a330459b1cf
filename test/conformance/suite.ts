/**
 * The conformance suite: the semantics of ARCHITECTURE §2, run against every broker.
 *
 * A platform calls `runConformance(name, setup, capabilities)` from its own test file. `setup`
 * builds a fresh topology (queue, topic, subscription...) per test and returns a fixture that
 * creates brokers on it. Capability flags skip what a platform lacks, with the reason in the
 * test name so it is printed.
 */
import {
  type Broker,
  type BrokerOptions,
  BrokerStoppedError,
  type Capabilities,
  CloudmomError,
  type Codec,
  InvalidArgumentError,
  InvalidMessageError,
  MessageTooLargeError,
  type Properties,
  RequestTimeoutError,
} from 'cloudmom';
import { afterAll, afterEach, describe, expect, it, type TestContext } from 'vitest';
import { z } from 'zod';
import { INTERNALS } from '../../src/broker.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

/** A dead-lettered message as the fixture reads it back from the platform. */
export interface FixtureDeadLetter {
  readonly target?: string;
  readonly body: unknown;
  readonly reason: { readonly code: string; readonly description: string };
}

/** A fresh topology on the platform under test. */
export interface Fixture {
  /** A broker on this topology (not started). Core options are passed through. */
  broker(options?: BrokerOptions): Promise<Broker> | Broker;
  /** Reads the dead-letter destination (may be called repeatedly; returns all so far). */
  deadLetters(): Promise<FixtureDeadLetter[]>;
  /** Puts raw bytes on the inbound destination, bypassing publish (missing target cases). */
  injectRaw?(message: { body: Uint8Array; contentType?: string; target?: string }): Promise<void>;
  /** Deletes what setup created. */
  cleanup(): Promise<void>;
  /** A broker whose publish destination does not exist (see `caps.missingDestination`). */
  missingDestinationBroker?(options?: BrokerOptions): Promise<Broker> | Broker;
  /** A reply address the brokers allow but where sending fails (see `caps.failingReply`). */
  failingReplyAddress?(): Promise<string> | string;
  /**
   * Messages the platform still holds on the inbound destination — ready, locked (in flight)
   * or delayed — where it can count them exactly (moto's and fauxqs's queue attributes).
   * With it, "settled at the platform" is checked by the count reaching 0 instead of by
   * waiting past the lock for a message to come back.
   */
  pending?(): Promise<number>;
}

/**
 * What the platform can do; a string instead of `true` is the reason a case is skipped. The
 * limits, ordering and delay come from the broker's own `capabilities` (read from a broker of
 * the fixture's kind: `new XBroker(...).capabilities`), not restated per test file.
 */
export interface ConformanceCapabilities {
  /** The broker's capabilities (`broker.capabilities`). */
  readonly capabilities: Capabilities;
  /** Why ordering is not there, when `capabilities.ordering` is false (default: a generic reason). */
  readonly orderingReason?: string;
  /** Why delay is not there, when `capabilities.maxDelaySeconds` is 0. */
  readonly delayReason?: string;
  /** Why `request()` is not there, when `capabilities.request` is false. */
  readonly requestReason?: string;
  /** Header names the platform can carry, awkward ones included. */
  readonly headerKeys?: readonly string[];
  /** A reply address outside the default allow-list, valid in form for the platform. */
  readonly foreignAddress?: string;
  /** The fixture implements `injectRaw`. */
  readonly injectRaw?: true | string;
  /** Multiplies waits for slow emulators. Default 1. */
  readonly timeScale?: number;
  /** How long an unsettled message stays locked before the platform redelivers it (ms). Default 5000. */
  readonly lockMs?: number;
  /** The fixture implements `missingDestinationBroker`. */
  readonly missingDestination?: true | string;
  /** The fixture implements `failingReplyAddress`. */
  readonly failingReply?: true | string;
}

const DEFAULT_KEYS = [
  'x-tenant',
  'a.b.c',
  'with space',
  'slash/and/../dots',
  'quote"s',
  'ünïcødé',
  'UPPER_lower-09',
  '__proto__',
  'constructor',
];
const AWKWARD_VALUES = [
  '',
  ' padded ',
  'line\nbreak',
  '"quoted"',
  '../../etc/passwd',
  'ünïcødé ✓ 日本',
  '{"json":true}',
  'x'.repeat(200),
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Core options every case starts from: fast retries so redelivery cases finish quickly. */
export const SUITE_OPTIONS: BrokerOptions = {
  logger: false,
  maxDeliveries: 3,
  retry: { baseDelayMs: 50, maxDelayMs: 200 },
  requestTimeoutMs: 10_000,
};

export function runConformance(
  name: string,
  setup: () => Promise<Fixture>,
  caps: ConformanceCapabilities,
): void {
  const scale = caps.timeScale ?? 1;
  const platform = caps.capabilities;
  const ordering: true | string = platform.ordering
    ? true
    : (caps.orderingReason ?? `${platform.name} does not order by group key`);
  const delay: true | string =
    platform.maxDelaySeconds > 0
      ? true
      : (caps.delayReason ?? `${platform.name} has no per-message delay`);
  const requests: true | string = platform.request
    ? true
    : (caps.requestReason ?? `${platform.name} has no request()`);
  const lockMs = caps.lockMs ?? 5000;
  const T = (ms: number) => ms * scale;
  let fixture: Fixture | undefined;
  const brokers: Broker[] = [];
  let cases = 0;
  let skipped = 0;

  async function fresh(): Promise<Fixture> {
    fixture = await setup();
    return fixture;
  }
  async function broker(options: BrokerOptions = {}, start = true): Promise<Broker> {
    const f = fixture ?? (await fresh());
    const b = await f.broker({ ...SUITE_OPTIONS, ...options });
    brokers.push(b);
    if (start) await b.start();
    return b;
  }
  async function until<T>(
    what: string,
    probe: () => T | undefined | Promise<T | undefined>,
    ms = T(10_000),
  ): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(20);
    }
  }
  /**
   * Returns once every message is settled at the platform: the fixture's `pending()` count is
   * 0, or — without one — the lock has run out, so an unsettled message would be back by then.
   * (The lock is the platform's clock, not our CPU's: only the margin is scaled.)
   */
  async function pastTheLock(): Promise<void> {
    const f = fixture!;
    if (f.pending)
      await until('nothing pending at the platform', async () => (await f.pending!()) === 0);
    else await sleep(lockMs + T(1000));
  }
  async function deadLetterFor(target: string): Promise<FixtureDeadLetter> {
    return until(`a dead letter for ${target}`, async () =>
      (await fixture!.deadLetters()).find((d) => d.target === target),
    );
  }
  /** A handler that records (properties, body) and optionally returns a value. */
  function recorder<R>(reply?: (p: Properties, b: any) => R) {
    const seen: { properties: Properties; body: any }[] = [];
    const handler = (properties: Properties, body: any) => {
      seen.push({ properties, body });
      return reply?.(properties, body);
    };
    return { seen, handler };
  }

  const test = (title: string, fn: (ctx: TestContext) => Promise<void>, timeout = T(30_000)) => {
    cases++;
    it(title, fn, timeout);
  };
  const testIf = (
    cap: true | string | undefined,
    title: string,
    fn: (ctx: TestContext) => Promise<void>,
  ) => {
    if (cap === true) return test(title, fn);
    cases++;
    skipped++;
    it.skip(`${title} — skipped: ${cap ?? 'not supported'}`, fn);
  };

  describe(`conformance: ${name}`, () => {
    afterEach(async () => {
      await Promise.allSettled(brokers.splice(0).map((b) => b.stop()));
      await fixture?.cleanup();
      fixture = undefined;
    });
    afterAll(() => {
      console.log(`conformance ${name}: ${cases} cases (${skipped} skipped by capability)`);
    });

    // ---- bodies ----
    test('JSON bodies round-trip with their kind', async () => {
      const b = await broker();
      const r = recorder();
      b.add('json', r.handler);
      const bodies = [
        { a: 1, nested: { list: [1, 'two', null, true] }, s: 'ünï ✓' },
        [1, 2, 3],
        42,
        true,
        null,
      ];
      for (const body of bodies) await b.publish(body, 'json');
      await until('5 JSON messages', () => r.seen.length >= 5);
      expect(r.seen.map((s) => s.body)).toEqual(expect.arrayContaining(bodies));
      expect(r.seen.every((s) => s.properties.contentType === 'application/json')).toBe(true);
    });

    test('text bodies round-trip as strings', async () => {
      const b = await broker();
      const r = recorder();
      b.add('text', r.handler);
      await b.publish('Hello World! ✓ 日本', 'text');
      await until('the text message', () => r.seen[0]);
      expect(r.seen[0]!.body).toBe('Hello World! ✓ 日本');
      expect(r.seen[0]!.properties.contentType).toMatch(/^text\/plain/);
    });

    test('byte bodies round-trip, non-UTF-8 included', async () => {
      const b = await broker();
      const r = recorder();
      b.add('bytes', r.handler);
      const bytes = new Uint8Array([
        0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1,
      ]);
      await b.publish(bytes, 'bytes');
      await until('the byte message', () => r.seen[0]);
      expect(r.seen[0]!.body).toBeInstanceOf(Uint8Array);
      expect(Array.from(r.seen[0]!.body as Uint8Array)).toEqual(Array.from(bytes));
      expect(r.seen[0]!.properties.contentType).toBe('application/octet-stream');
    });

    test('empty bodies round-trip: empty string, empty bytes', async () => {
      const b = await broker();
      const r = recorder();
      b.add('empty', r.handler);
      await b.publish('', 'empty');
      await b.publish(new Uint8Array(0), 'empty');
      await until('two empty messages', () => r.seen.length >= 2);
      const kinds = r.seen.map((s) =>
        s.body instanceof Uint8Array
          ? `bytes:${s.body.byteLength}`
          : `text:${JSON.stringify(s.body)}`,
      );
      expect(kinds.sort()).toEqual(['bytes:0', 'text:""']);
    });

    test('a custom codec encodes and decodes by content type', async () => {
      const csv: Codec = {
        contentType: 'text/csv',
        encode: (rows) =>
          new TextEncoder().encode((rows as string[][]).map((r) => r.join(',')).join('\n')),
        decode: (bytes) =>
          new TextDecoder()
            .decode(bytes)
            .split('\n')
            .map((l) => l.split(',')),
      };
      const b = await broker({ codecs: [csv] });
      const r = recorder();
      b.add('csv', r.handler);
      await b.publish(
        [
          ['a', '1'],
          ['b', '2'],
        ],
        'csv',
        { contentType: 'text/csv' },
      );
      await until('the csv message', () => r.seen[0]);
      expect(r.seen[0]!.body).toEqual([
        ['a', '1'],
        ['b', '2'],
      ]);
      expect(r.seen[0]!.properties.contentType).toBe('text/csv');
    });

    // ---- headers ----
    test('headers with awkward names and values round-trip', async () => {
      const b = await broker();
      const r = recorder();
      b.add('headers', r.handler);
      const keys = caps.headerKeys ?? DEFAULT_KEYS;
      const headers: Record<string, string> = {};
      keys.forEach((k, i) => {
        // an own property whatever the name (`headers.__proto__ = v` would set the prototype)
        Object.defineProperty(headers, k, {
          value: AWKWARD_VALUES[i % AWKWARD_VALUES.length]!,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      });
      await b.publish('h', 'headers', { headers });
      await until('the message with headers', () => r.seen[0]);
      expect(r.seen[0]!.properties.headers).toEqual(headers);
    });

    test('reserved header names are refused at publish with InvalidMessageError', async () => {
      const b = await broker();
      for (const k of ['target', 'correlation_id', 'reply_to', 'content_type']) {
        await expect(b.publish('x', 't', { headers: { [k]: 'v' } })).rejects.toBeInstanceOf(
          InvalidMessageError,
        );
      }
      await expect(b.publish('x', '')).rejects.toBeInstanceOf(InvalidMessageError);
    });

    test('unknown options are refused with InvalidArgumentError', async () => {
      await fresh();
      await expect(async () =>
        fixture!.broker({ ...SUITE_OPTIONS, concurency: 3 } as BrokerOptions),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
      const b = await broker();
      await expect(b.publish('x', 't', { correlationID: 'c' } as any)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    });

    // ---- routing ----
    test('a message reaches the handlers of exactly its target', async () => {
      const b = await broker();
      const a = recorder();
      const c = recorder();
      b.add('route-a', a.handler).add('route-c', c.handler);
      await b.publish('to-a', 'route-a');
      await b.publish('to-c', 'route-c');
      await until('both messages', () => a.seen.length + c.seen.length >= 2);
      await sleep(T(100));
      expect(a.seen.map((s) => s.body)).toEqual(['to-a']);
      expect(c.seen.map((s) => s.body)).toEqual(['to-c']);
      expect(a.seen[0]!.properties.target).toBe('route-a');
    });

    test('several handlers on one target run in the order added', async () => {
      const b = await broker();
      const order: string[] = [];
      b.add('multi', async () => {
        await sleep(20);
        order.push('first');
      });
      b.add('multi', () => {
        order.push('second');
      });
      b.add('multi', () => {
        order.push('third');
      });
      await b.publish('x', 'multi');
      await until('three handlers', () => order.length >= 3);
      expect(order).toEqual(['first', 'second', 'third']);
    });

    test('a message for a target with no handler is discarded (acknowledged, not dead-lettered)', async () => {
      const b = await broker();
      const r = recorder();
      b.add('known', r.handler);
      await b.publish('nobody', 'unknown-target');
      await b.publish('after', 'known');
      await until('the known message', () => r.seen[0]);
      await until('the discard counted', () => b.stats.discarded >= 1);
      await sleep(T(300));
      expect(b.stats.discarded).toBe(1);
      expect((await fixture!.deadLetters()).filter((d) => d.target === 'unknown-target')).toEqual(
        [],
      );
    });

    test('with unknownTarget: dead-letter, such a message is dead-lettered with its reason', async () => {
      const b = await broker({ unknownTarget: 'dead-letter' });
      b.add('known', () => undefined);
      await b.publish({ x: 1 }, 'nobody-home');
      const d = await deadLetterFor('nobody-home');
      expect(d.reason.code).toBe('unknown-target');
      expect(d.body).toEqual({ x: 1 });
    });

    testIf(
      caps.injectRaw ?? 'the fixture cannot inject raw messages',
      'a message without a target goes to the dead-letter destination',
      async () => {
        const b = await broker();
        b.add('anything', () => undefined);
        await fixture!.injectRaw!({
          body: new TextEncoder().encode('{"orphan":true}'),
          contentType: 'application/json',
        });
        const d = await until('the dead letter', async () =>
          (await fixture!.deadLetters()).find((x) => x.reason.code === 'missing-target'),
        );
        expect(d.reason.description).toMatch(/no target/);
      },
    );

    // ---- failures ----
    test('a handler error leads to redelivery with deliveryCount + 1', async () => {
      const b = await broker();
      const counts: number[] = [];
      b.add('flaky', (p) => {
        counts.push(p.deliveryCount);
        if (p.deliveryCount < 2) throw new Error('first attempt fails');
      });
      await b.publish('x', 'flaky');
      await until('the second delivery', () => counts.length >= 2);
      await sleep(T(200));
      expect(counts).toEqual([1, 2]);
      expect(b.stats.retried).toBe(1);
    });

    test('after maxDeliveries failures the message is dead-lettered with the error as reason', async () => {
      const b = await broker({ maxDeliveries: 3 });
      const counts: number[] = [];
      b.add('always-fails', (p) => {
        counts.push(p.deliveryCount);
        throw new TypeError('database unreachable');
      });
      await b.publish({ order: 7 }, 'always-fails');
      const d = await deadLetterFor('always-fails');
      expect(counts).toEqual([1, 2, 3]);
      expect(d.reason.code).toBe('handler-failed');
      expect(d.reason.description).toContain('TypeError: database unreachable');
      expect(d.body).toEqual({ order: 7 });
    });

    test('an undecodable body goes straight to the dead-letter destination', async () => {
      const liar: Codec = {
        contentType: 'application/json',
        encode: (s) => new TextEncoder().encode(String(s)),
        decode: (b) => b,
      };
      const publisher = await broker({ codecs: [liar] }, false);
      const b = await broker();
      const r = recorder();
      b.add('poison', r.handler);
      await publisher.publish('{not json', 'poison', { contentType: 'application/json' });
      const d = await until('the dead letter', async () =>
        (await fixture!.deadLetters()).find((x) => x.target === 'poison'),
      );
      expect(d.reason.code).toBe('undecodable');
      expect(r.seen).toEqual([]);
      expect(b.stats.retried).toBe(0);
    });

    test('a body failing the target schema is dead-lettered with the issues', async () => {
      const b = await broker();
      const r = recorder();
      b.add('typed', r.handler, { schema: z.object({ id: z.string() }) });
      await b.publish({ id: 'ok' }, 'typed');
      await b.publish({ id: 12 }, 'typed');
      const d = await deadLetterFor('typed');
      expect(d.reason.code).toBe('schema-invalid');
      expect(d.reason.description).toMatch(/id/);
      await until('the valid one', () => r.seen[0]);
      expect(r.seen.map((s) => s.body)).toEqual([{ id: 'ok' }]);
    });

    // ---- replies ----
    testIf(
      requests,
      'request() resolves with the reply from a handler (message replyTo rule)',
      async () => {
        const responder = await broker();
        responder.add('hello', () => 'Hi there too');
        const requester = await broker({}, false); // not consuming the inbound queue: a pure client
        const reply = await requester.request('Hello World!', 'hello');
        expect(reply.body).toBe('Hi there too');
        expect(reply.properties.target).toBe('reply');
      },
    );

    test('without a message replyTo the reply is published to add()`s replyTo target with the correlation id', async () => {
      const b = await broker();
      const answers = recorder();
      b.add('ask', (_p, body: number) => body * 2, 'answer');
      b.add('answer', answers.handler);
      await b.publish(21, 'ask', 'corr-42');
      await until('the answer', () => answers.seen[0]);
      expect(answers.seen[0]!.body).toBe(42);
      expect(answers.seen[0]!.properties.correlationId).toBe('corr-42');
    });

    test('a reply without a correlation id carries the incoming message id', async () => {
      const b = await broker();
      const answers = recorder();
      b.add('ask2', () => 'pong', 'answer2');
      b.add('answer2', answers.handler);
      const id = await b.publish('ping', 'ask2');
      await until('the answer', () => answers.seen[0]);
      expect(answers.seen[0]!.properties.correlationId).toBe(id);
    });

    test('a return value with no reply address is dropped and the message acknowledged', async () => {
      const b = await broker();
      let calls = 0;
      b.add('noreply', () => {
        calls++;
        return 'nobody listens';
      });
      await b.publish('x', 'noreply');
      await until('the message acknowledged', () => b.stats.acked >= 1);
      await sleep(T(300));
      expect(calls).toBe(1);
      expect(b.stats.repliesSent).toBe(0);
    });

    testIf(
      requests,
      'on the requester, a reply matching no pending request goes to the "reply" target',
      async () => {
        const responder = await broker();
        responder.add('twice', () => 'first').add('twice', () => 'second');
        const requester = await broker({}, false);
        const stray = recorder();
        requester.add('reply', stray.handler);
        const reply = await requester.request('x', 'twice');
        expect(['first', 'second']).toContain(reply.body);
        await until('the second reply on target "reply"', () => stray.seen[0]);
        expect(stray.seen[0]!.properties.correlationId).toBe(reply.properties.correlationId);
        expect(stray.seen[0]!.body).not.toBe(reply.body);
      },
    );

    testIf(requests, 'request() rejects with RequestTimeoutError when no reply comes', async () => {
      const b = await broker();
      const started = Date.now();
      const err = await b
        .request('x', 'nobody-answers', { timeoutMs: 300 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RequestTimeoutError);
      expect((err as RequestTimeoutError).code).toBe('request-timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    });

    testIf(requests, '100 concurrent requests each get their own reply', async () => {
      const responder = await broker({ concurrency: 20 });
      responder.add('echo', async (_p, body: { n: number }) => {
        await sleep(Math.random() * 20);
        return { n: body.n, squared: body.n * body.n };
      });
      const requester = await broker({}, false);
      const replies = await Promise.all(
        Array.from({ length: 100 }, (_, n) =>
          requester.request({ n }, 'echo', { timeoutMs: T(20_000) }),
        ),
      );
      for (const [n, r] of replies.entries()) expect(r.body).toEqual({ n, squared: n * n });
      expect(new Set(replies.map((r) => r.properties.correlationId)).size).toBe(100);
    });

    test('a reply address outside the allow-list is refused: dead-lettered, handler not run', async () => {
      const b = await broker();
      const r = recorder(() => 'secret');
      b.add('guarded', r.handler);
      await b.publish('x', 'guarded', { replyTo: caps.foreignAddress ?? 'attacker-queue' });
      const d = await deadLetterFor('guarded');
      expect(d.reason.code).toBe('reply-not-allowed');
      expect(r.seen).toEqual([]);
    });

    // ---- limits ----
    test('an oversize publish fails with MessageTooLargeError and sends nothing', async () => {
      const b = await broker();
      const r = recorder();
      b.add('size', r.handler);
      const big = new Uint8Array(platform.maxMessageBytes + 1);
      const err = await b.publish(big, 'size').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MessageTooLargeError);
      expect((err as MessageTooLargeError).limit).toBe(platform.maxMessageBytes);
      await b.publish('small', 'size');
      await until('the small message', () => r.seen[0]);
      await sleep(T(200));
      expect(r.seen.map((s) => s.body)).toEqual(['small']);
    });

    test('publishBatch delivers every entry with its options; a bad entry sends nothing', async () => {
      const b = await broker();
      const r = recorder();
      b.add('batch-a', r.handler);
      b.add('batch-b', r.handler);
      const entries = Array.from({ length: 23 }, (_, i) => ({
        body: { i },
        target: i % 2 ? 'batch-a' : 'batch-b',
        correlationId: `corr-${i}`,
        headers: { index: String(i) },
      }));
      const ids = await b.publishBatch(entries);
      expect(ids).toHaveLength(23);
      expect(new Set(ids).size).toBe(23);
      await until('23 batch messages', () => r.seen.length >= 23);
      for (const { properties, body } of r.seen) {
        const i = (body as { i: number }).i;
        expect(properties.target).toBe(entries[i]!.target);
        expect(properties.correlationId).toBe(`corr-${i}`);
        expect(properties.headers.index).toBe(String(i));
        expect(properties.messageId).toBe(ids[i]);
      }
      const bad = await b
        .publishBatch([
          { body: 'first', target: 'batch-a' },
          { body: 'second', target: 'batch-a', headers: { correlation_id: 'x' } },
        ])
        .catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(InvalidMessageError);
      expect((bad as Error).message).toMatch(/entry 1/);
      await b.publish('after', 'batch-a');
      await until('the message after', () => r.seen.find((s) => s.body === 'after'));
      await sleep(T(200));
      expect(r.seen.filter((s) => s.body === 'first')).toEqual([]);
      expect(r.seen).toHaveLength(24);
    });

    testIf(
      delay,
      'delaySeconds holds a message back; out-of-range delays are refused',
      async () => {
        const b = await broker();
        const r = recorder();
        b.add('later', r.handler);
        const sent = Date.now();
        await b.publish('x', 'later', { delaySeconds: 1 });
        await until('the delayed message', () => r.seen[0]);
        expect(Date.now() - sent).toBeGreaterThanOrEqual(900);
        await expect(b.publish('x', 'later', { delaySeconds: -1 })).rejects.toBeInstanceOf(
          InvalidMessageError,
        );
      },
    );

    testIf(ordering, 'order is kept per group key under concurrency', async () => {
      const b = await broker({ concurrency: 10 });
      const seen = new Map<string, number[]>();
      b.add('ordered', async (_p, body: { g: string; i: number }) => {
        await sleep(Math.random() * 5);
        const list = seen.get(body.g) ?? [];
        list.push(body.i);
        seen.set(body.g, list);
      });
      const groups = ['g1', 'g2', 'g3'];
      const sends: Promise<string>[] = [];
      for (let i = 0; i < 20; i++)
        for (const g of groups) sends.push(b.publish({ g, i }, 'ordered', { groupKey: g }));
      await Promise.all(sends);
      await until(
        '60 ordered messages',
        () => [...seen.values()].reduce((n, l) => n + l.length, 0) >= 60,
      );
      for (const g of groups) expect(seen.get(g)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });

    // ---- lifecycle ----
    test(
      'stop() waits for in-flight handlers and settles their messages',
      async () => {
        const b = await broker();
        let finished = false;
        let started = false;
        b.add('slow', async () => {
          started = true;
          await sleep(T(300));
          finished = true;
        });
        await b.publish('x', 'slow');
        await until('the handler to start', () => started);
        await b.stop();
        expect(finished).toBe(true);
        expect(b.stats.acked).toBe(1);
        // settled at the platform: it does not come back once its lock would have expired
        const again = await broker();
        const r = recorder();
        again.add('slow', r.handler);
        await pastTheLock();
        expect(r.seen).toEqual([]);
      },
      T(lockMs + 30_000),
    );

    test('publish after stop() fails with BrokerStoppedError', async () => {
      const b = await broker();
      await b.stop();
      await expect(b.publish('x', 'anything')).rejects.toBeInstanceOf(BrokerStoppedError);
      await expect(b.request('x', 'anything')).rejects.toBeInstanceOf(BrokerStoppedError);
    });

    test(
      '1,000 messages at concurrency 50: none lost, none handled twice',
      async () => {
        const b = await broker({ concurrency: 50 });
        const seen = new Map<number, number>();
        let active = 0;
        let peak = 0;
        b.add('bulk', async (_p, body: { i: number }) => {
          active++;
          peak = Math.max(peak, active);
          await sleep(1);
          seen.set(body.i, (seen.get(body.i) ?? 0) + 1);
          active--;
        });
        await Promise.all(Array.from({ length: 1000 }, (_, i) => b.publish({ i }, 'bulk')));
        await until('1000 messages', () => seen.size >= 1000, T(60_000));
        // a message settled late or not at all would come back (and be handled twice)
        await pastTheLock();
        expect(seen.size).toBe(1000);
        expect([...seen.values()].every((n) => n === 1)).toBe(true);
        expect(peak).toBeLessThanOrEqual(50);
        expect(b.stats.acked).toBe(1000);
      },
      T(90_000) + lockMs,
    );

    // ---- v2 contract cases (go-cloud drivertest, Watermill TestPubSub) ----
    testIf(
      caps.missingDestination ?? 'the fixture has no missing destination',
      'a destination that does not exist fails on send with a typed error, not on construction',
      async () => {
        await fresh();
        const b = await fixture!.missingDestinationBroker!({ ...SUITE_OPTIONS });
        brokers.push(b);
        const err = await b.publish('x', 'nowhere').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CloudmomError);
        expect((err as CloudmomError).code).toBe('not-found');
      },
    );

    test('settling a message twice is harmless', async (ctx) => {
      const b = await broker({}, false);
      const t = b[INTERNALS].transport;
      if (!t.open) return ctx.skip(`${platform.name} has no long-running source`);
      await b.publish('twice', 'settle-twice');
      const [source] = await t.open();
      const abort = new AbortController();
      try {
        const m = await until(
          'the message',
          async () => (await source!.receive(1, abort.signal))[0],
        );
        await source!.ack([m.ackId]);
        await source!.ack([m.ackId]);
      } finally {
        await source!.close();
      }
    });

    test('send after the transport closed fails with a typed error', async () => {
      const b = await broker();
      const t = b[INTERNALS].transport;
      await b.stop();
      const message: OutgoingMessage = {
        body: new TextEncoder().encode('"late"'),
        target: 'late',
        messageId: globalThis.crypto.randomUUID(),
        contentType: 'application/json',
        headers: {},
      };
      const outcome = await t.send([message]).then(
        (o) => o[0],
        (error: unknown) => ({ ok: false as const, error }),
      );
      expect(outcome?.ok).toBe(false);
      if (outcome && !outcome.ok) expect(outcome.error).toBeInstanceOf(Error);
    });

    test('raw and client escape hatches expose the native message and client', async () => {
      const b = await broker();
      expect(b.client).toBeDefined();
      expect(b.client).not.toBeNull();
      const r = recorder();
      b.add('raw', r.handler);
      await b.publish('x', 'raw');
      await until('the message', () => r.seen[0]);
      const raw = r.seen[0]!.properties.raw;
      expect(typeof raw === 'object' && raw !== null).toBe(true);
    });

    testIf(
      ordering,
      'order per group key holds after a failure: the failed message comes back first',
      async () => {
        const b = await broker({ concurrency: 10, maxDeliveries: 5 });
        const done: number[] = [];
        const starts: string[] = [];
        b.add('ordered-fail', async (p, body: { i: number }) => {
          starts.push(`${body.i}@${p.deliveryCount}`);
          await sleep(5);
          if (body.i === 1 && p.deliveryCount === 1) throw new Error('first try of #1 fails');
          done.push(body.i);
        });
        for (let i = 0; i < 5; i++) await b.publish({ i }, 'ordered-fail', { groupKey: 'k' });
        await until('5 messages done', () => done.length >= 5, T(30_000));
        await sleep(T(200));
        expect(done).toEqual([0, 1, 2, 3, 4]);
        // nothing after #1 ran before #1 succeeded
        const firstOk1 = starts.indexOf('1@2');
        expect(firstOk1).toBeGreaterThan(-1);
        for (const s of starts.slice(0, firstOk1)) expect(['0@1', '1@1']).toContain(s);
      },
    );

    testIf(
      requests,
      'two requester instances sharing the reply setup: every request gets its own reply',
      async () => {
        const responder = await broker({ concurrency: 20 });
        responder.add('who', (_p, body: { from: string; n: number }) => body);
        const a = await broker({}, false);
        const c = await broker({}, false);
        const ask = (who: Broker, from: string) =>
          Array.from({ length: 10 }, (_, n) =>
            who.request({ from, n }, 'who', { timeoutMs: T(20_000) }),
          );
        const [ra, rc] = await Promise.all([Promise.all(ask(a, 'a')), Promise.all(ask(c, 'c'))]);
        expect(ra.map((r) => r.body)).toEqual(
          Array.from({ length: 10 }, (_, n) => ({ from: 'a', n })),
        );
        expect(rc.map((r) => r.body)).toEqual(
          Array.from({ length: 10 }, (_, n) => ({ from: 'c', n })),
        );
      },
    );

    testIf(
      caps.failingReply ?? 'the fixture has no failing reply address',
      'a reply whose send fails leaves the message unacknowledged (redelivered or dead-lettered)',
      async () => {
        const b = await broker({ maxDeliveries: 2 });
        const counts: number[] = [];
        b.add('reply-fails', (p) => {
          counts.push(p.deliveryCount);
          return 'answer';
        });
        await b.publish('q', 'reply-fails', { replyTo: await fixture!.failingReplyAddress!() });
        const outcome = await until('a redelivery or a dead letter', async () => {
          if (counts.length >= 2) return 'redelivered';
          const d = (await fixture!.deadLetters()).find((x) => x.target === 'reply-fails');
          return d ? `dead-lettered:${d.reason.code}` : undefined;
        });
        expect(['redelivered', 'dead-lettered:reply-failed']).toContain(outcome);
        expect(b.stats.repliesSent).toBe(0);
      },
    );
  });
}
