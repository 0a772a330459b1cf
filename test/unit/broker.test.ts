import {
  Broker,
  BrokerStoppedError,
  InvalidArgumentError,
  InvalidMessageError,
  MemoryBroker,
  MemoryHub,
  MOMService,
  PublishBatchError,
  RequestAbortedError,
  SendError,
} from 'cloudmom';
import { describe, expect, it } from 'vitest';
import { allowListMatcher } from '../../src/broker.ts';
import { CodecRegistry } from '../../src/codec.ts';
import { Publisher } from '../../src/publisher.ts';
import type { IncomingMessage, OutgoingMessage, Transport } from '../../src/transport.ts';

describe('reply allow-list', () => {
  it('matches exact strings, prefixes ending in *, RegExps and functions', () => {
    const allow = allowListMatcher(['replies', 'reply.*', /^tenant-\d+$/]);
    expect(allow('replies')).toBe(true);
    expect(allow('replies-2')).toBe(false);
    expect(allow('reply.abc')).toBe(true);
    expect(allow('tenant-42')).toBe(true);
    expect(allow('tenant-x')).toBe(false);
    expect(allowListMatcher((a) => a.length === 3)('abc')).toBe(true);
  });
});

/** Capabilities of the in-test transports below: batches of 10, nothing else. */
const COUNTING: Transport['capabilities'] = {
  name: 'counting',
  maxMessageBytes: 1024,
  maxBatchMessages: 10,
  maxBatchBytes: 1024 * 1024,
  batchLingerMs: 5,
  ordering: false,
  maxDelaySeconds: 0,
  nackDelay: false,
  deadLetter: 'copy',
  request: false,
  defaultReplyAllowList: [],
};

/** A broker on an in-test transport (what a platform broker is, minus the platform). */
function brokerOn(transport: Transport): Broker {
  class CountingBroker extends Broker {
    constructor() {
      super(transport, { logger: false });
    }
  }
  return new CountingBroker();
}

describe('Broker options and arguments', () => {
  it('rejects unknown option keys and bad values with InvalidArgumentError', () => {
    expect(() => new MemoryBroker({ concurency: 1 } as never)).toThrow(InvalidArgumentError);
    expect(() => new MemoryBroker({ concurrency: 0 })).toThrow(/positive integer/);
    expect(() => new MemoryBroker({ unknownTarget: 'drop' as never })).toThrow(
      InvalidArgumentError,
    );
    const b = new MemoryBroker({ hub: new MemoryHub(), logger: false });
    expect(() => b.add('', () => {})).toThrow(InvalidArgumentError);
    expect(() => b.add('t', 'nope' as never)).toThrow(InvalidArgumentError);
    expect(() => b.add('t', () => {}, { reply: 'x' } as never)).toThrow(/unknown option/);
  });

  it('batches publishes: 25 messages in sends of 10, 10, 5; a failed entry fails only its caller', async () => {
    const sends: number[] = [];
    const transport: Transport = {
      capabilities: COUNTING,
      isRetryable: () => false,
      async send(batch) {
        sends.push(batch.length);
        return batch.map((m) =>
          m.target === 'bad'
            ? { ok: false, error: new SendError('refused by the service') }
            : { ok: true, messageId: `id-${m.messageId}` },
        );
      },
      async close() {},
    };
    const b = brokerOn(transport);
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) => b.publish({ i }, i === 3 ? 'bad' : 'good')),
    );
    expect(sends).toEqual([10, 10, 5]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect((results[3] as PromiseRejectedResult).reason).toBeInstanceOf(SendError);
    expect((results[4] as PromiseFulfilledResult<string>).value).toMatch(/^id-/);
    await b.stop();
  });

  it('cuts a dead-letter copy larger than the platform takes to fit, its size in dead_letter_truncated', async () => {
    const sent: OutgoingMessage[] = [];
    const transport: Transport = {
      capabilities: COUNTING,
      isRetryable: () => false,
      async send(batch) {
        sent.push(...batch);
        return batch.map(() => ({ ok: true }));
      },
      async close() {},
    };
    const p = new Publisher(
      transport,
      new CodecRegistry(),
      undefined,
      { published: 0 },
      (m) => m.body.byteLength,
    );
    const received = (text: string): IncomingMessage => ({
      body: new TextEncoder().encode(text),
      target: 't',
      messageId: 'm-1',
      headers: { h: 'v' },
      deliveryCount: 3,
      raw: undefined,
    });
    const reason = { code: 'handler-failed', description: 'failed' } as const;
    await p.deadLetter(received('short'), reason, 'dlq');
    await p.deadLetter(received('x'.repeat(5000)), reason, 'dlq');
    await p.flush();
    expect(new TextDecoder().decode(sent[0]!.body)).toBe('short');
    expect(sent[0]!.headers).toEqual({ h: 'v' });
    expect(sent[1]!.body.byteLength).toBeLessThanOrEqual(COUNTING.maxMessageBytes);
    expect(sent[1]!.body.byteLength).toBeGreaterThan(COUNTING.maxMessageBytes - 200);
    expect(sent[1]!.headers).toEqual({ h: 'v', dead_letter_truncated: '5000' });
    expect(sent.map((m) => [m.destination, m.deadLetter?.deliveryCount])).toEqual([
      ['dlq', 3],
      ['dlq', 3],
    ]);
  });

  it('publishBatch: one set of batches with single publishes, ids in entry order, partial failures named', async () => {
    const sends: string[][] = [];
    const transport: Transport = {
      capabilities: COUNTING,
      isRetryable: () => true,
      async send(batch) {
        sends.push(batch.map((m) => m.target));
        return batch.map((m) =>
          m.target === 'bad'
            ? { ok: false, error: new Error('throttled') }
            : { ok: true, messageId: `id-${m.body.length}-${m.correlationId ?? ''}` },
        );
      },
      async close() {},
    };
    const b = brokerOn(transport);
    // a single publish and a batch of 12 share the batches (10, then 3)
    const single = b.publish('x', 'one');
    const entries = Array.from({ length: 12 }, (_, i) => ({
      body: 'y'.repeat(i + 1),
      target: 'good',
      correlationId: `c${i}`,
    }));
    const ids = await b.publishBatch(entries);
    expect(await single).toBe('id-1-');
    expect(ids).toEqual(entries.map((_e, i) => `id-${i + 1}-c${i}`));
    expect(sends.map((s) => s.length)).toEqual([10, 3]);
    expect(b.stats.published).toBe(13);
    expect(await b.publishBatch([])).toEqual([]);

    // a bad entry: nothing of the call is sent, the error names the entry
    sends.length = 0;
    const bad = await b
      .publishBatch([
        { body: 1, target: 'good' },
        { body: 2, target: 'good', headers: { target: 'x' } },
      ])
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidMessageError);
    expect((bad as Error).message).toMatch(/^publishBatch entry 1: .*reserved/);
    await expect(
      b.publishBatch([{ body: 1, target: 'good', colour: 'red' } as never]),
    ).rejects.toThrow(/entry 0: .*unknown option "colour"/);
    await expect(b.publishBatch([null as never])).rejects.toBeInstanceOf(InvalidMessageError);
    await expect(b.publishBatch('nope' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await new Promise((r) => setTimeout(r, 20));
    expect(sends).toEqual([]);

    // partial failure: the others are sent, results say which failed
    const err = await b
      .publishBatch([
        { body: 'a', target: 'good' },
        { body: 'b', target: 'bad' },
        { body: 'c', target: 'good' },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishBatchError);
    const e = err as PublishBatchError;
    expect(e.results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(e.retryable).toBe(true);
    expect(e.code).toBe('send-failed');
    expect(e.message).toMatch(/^1 of 3 messages of the batch were not sent .*throttled/);
    expect((e.results[1] as { error: Error }).error).toBeInstanceOf(SendError);
    await b.stop();
    await expect(b.publishBatch([{ body: 1, target: 'good' }])).rejects.toBeInstanceOf(
      BrokerStoppedError,
    );
  });

  it('request() can be cancelled with an AbortSignal', async () => {
    const b = new MemoryBroker({ hub: new MemoryHub(), logger: false });
    const ac = new AbortController();
    const p = b.request('x', 'nobody', { signal: ac.signal, timeoutMs: 5000 });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(RequestAbortedError);
    await b.stop();
  });

  it('stop() fails pending requests with RequestAbortedError instead of leaving them hanging', async () => {
    const b = new MemoryBroker({ hub: new MemoryHub(), logger: false });
    const p = b.request('x', 'nobody', { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 10));
    await b.stop();
    await expect(p).rejects.toBeInstanceOf(RequestAbortedError);
  });

  it('logs no message bodies', async () => {
    const lines: string[] = [];
    const logger = {
      debug: (m: string, f?: object) => lines.push(m + JSON.stringify(f)),
      info: (m: string, f?: object) => lines.push(m + JSON.stringify(f)),
      warn: (m: string, f?: object) => lines.push(m + JSON.stringify(f)),
      error: (m: string, f?: object) => lines.push(m + JSON.stringify(f)),
    };
    const b = new MemoryBroker({ hub: new MemoryHub(), logger, maxDeliveries: 1 });
    b.add('fail', () => {
      throw new Error('boom');
    });
    await b.start();
    await b.publish({ secret: 'hunter2' }, 'fail');
    await b.publish({ secret: 'hunter2' }, 'unknown');
    await new Promise((r) => setTimeout(r, 50));
    await b.stop();
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.join('\n')).not.toContain('hunter2');
  });
});

describe('MOMService', () => {
  it('holds named brokers, starts and stops them together', async () => {
    const mom = new MOMService();
    const a = mom.register('a', new MemoryBroker({ hub: new MemoryHub(), logger: false }));
    mom.register('b', new MemoryBroker({ hub: new MemoryHub(), logger: false }));
    expect(mom.get('a')).toBe(a);
    expect(mom.names()).toEqual(['a', 'b']);
    expect(() => mom.register('a', a)).toThrow(/already registered/);
    expect(() => mom.get('zzz')).toThrow(/no broker named "zzz"/);
    await mom.start();
    await mom.stop();
    await expect(a.publish('x', 't')).rejects.toThrow(/stopped/);
  });
});
