import {
  Broker,
  InvalidArgumentError,
  MemoryBroker,
  MemoryHub,
  MOMService,
  RequestAbortedError,
  SendError,
} from 'cloudmom';
import { describe, expect, it } from 'vitest';
import { allowListMatcher } from '../../src/broker.ts';
import type { Transport } from '../../src/transport.ts';

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
      capabilities: {
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
      },
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
    class CountingBroker extends Broker {
      constructor() {
        super(transport, { logger: false });
      }
    }
    const b = new CountingBroker();
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) => b.publish({ i }, i === 3 ? 'bad' : 'good')),
    );
    expect(sends).toEqual([10, 10, 5]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect((results[3] as PromiseRejectedResult).reason).toBeInstanceOf(SendError);
    expect((results[4] as PromiseFulfilledResult<string>).value).toMatch(/^id-/);
    await b.stop();
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
