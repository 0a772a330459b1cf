import { MemoryBroker, MemoryHub } from 'cloudmom';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../src/entrypoint.ts';
import type { Verdict } from '../../src/transport.ts';

const kinds = (r: Verdict[]) => r.map((x) => (x.kind === 'ack' ? 'ack' : 'retry'));

import { CodecRegistry, jsonCodec, textCodec } from '../../src/codec.ts';
import type { IncomingMessage } from '../../src/transport.ts';

const utf8 = new TextEncoder();

function incoming(n: number, extra: Partial<IncomingMessage> = {}): IncomingMessage {
  const text = JSON.stringify({ n });
  return {
    body: utf8.encode(text),
    text,
    target: 't',
    messageId: `m${n}`,
    contentType: 'application/json',
    headers: {},
    deliveryCount: 1,
    raw: null,
    ...extra,
  };
}

describe('text bodies', () => {
  it('decodeText gives what decode of the UTF-8 bytes gives (BOM, lone surrogates)', () => {
    const same = (codec: typeof jsonCodec, text: string) => {
      let viaText: unknown;
      let viaBytes: unknown;
      let textErr = false;
      let bytesErr = false;
      try {
        viaText = codec.decodeText?.(text);
      } catch {
        textErr = true;
      }
      try {
        viaBytes = codec.decode(utf8.encode(text));
      } catch {
        bytesErr = true;
      }
      expect(textErr).toBe(bytesErr);
      expect(viaText).toEqual(viaBytes);
    };
    for (const t of ['\ufeff{"a":1}', '"\ud800x"', '{"a":"\udc00"}', '\ufeff', 'nope', '']) {
      same(jsonCodec, t);
      same(textCodec, t);
    }
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json()), (t) => {
        same(jsonCodec, t);
        same(textCodec, t);
      }),
    );
  });

  it('the registry decodes a message from its text, or its bytes for codecs without decodeText', () => {
    const csv = {
      contentType: 'text/csv',
      encode: (b: unknown) => utf8.encode(String(b)),
      decode: (bytes: Uint8Array) => `bytes:${new TextDecoder().decode(bytes)}`,
    };
    const reg = new CodecRegistry([csv]);
    const m = (contentType: string, text: string) => ({
      ...incoming(0),
      contentType,
      text,
      body: utf8.encode(text),
    });
    expect(reg.decodeMessage(m('application/json', '{"a":1}'))).toEqual({ a: 1 });
    expect(reg.decodeMessage(m('Text/CSV; charset=utf-8', 'x,y'))).toBe('bytes:x,y');
    expect(reg.decodeMessage(m('text/plain; charset=utf-8', 'hi'))).toBe('hi');
    expect(() => reg.decodeMessage(m('application/x-nope', 'hi'))).toThrow(/no codec/);
  });

  it('content type lookups are cached but bounded, and stay right', () => {
    const reg = new CodecRegistry();
    for (let i = 0; i < 1000; i++) expect(reg.get(`application/x-${i}`)).toBeUndefined();
    for (let i = 0; i < 3; i++) {
      expect(reg.get('APPLICATION/JSON ; charset=utf-8')).toBe(jsonCodec);
      expect(reg.get('text/plain')).toBe(textCodec);
      expect(reg.get('application/x-1')).toBeUndefined();
    }
  });
});

describe('dispatch (the entrypoint call)', () => {
  const broker = (concurrency = 10) =>
    new MemoryBroker({ hub: new MemoryHub(), logger: false, concurrency });

  it('answers synchronously when every handler did, and counts stats', () => {
    const b = broker();
    const seen: number[] = [];
    b.add('t', (_p, body) => {
      seen.push(body.n);
    });
    const results = dispatch(b, [incoming(1), incoming(2), incoming(3)]);
    expect(kinds(results as Verdict[])).toEqual(['ack', 'ack', 'ack']);
    expect(seen).toEqual([1, 2, 3]);
    expect(b.stats).toMatchObject({ delivered: 3, acked: 3, retried: 0 });
  });

  it('a handler throwing synchronously leaves its message for retry, the others done', () => {
    const b = broker();
    b.add('t', (_p, body) => {
      if (body.n === 2) throw new Error('boom');
    });
    const results = dispatch(b, [incoming(1), incoming(2), incoming(3)]);
    expect(Array.isArray(results)).toBe(true);
    const r = results as Exclude<typeof results, Promise<unknown>>;
    expect(r[0]!.kind).toBe('ack');
    expect(r[1]).toMatchObject({ delayMs: 1000 });
    expect(r[2]!.kind).toBe('ack');
    expect(b.stats).toMatchObject({ acked: 2, retried: 1 });
  });

  it('async handlers stay bounded by concurrency, thenables are awaited, order of results kept', async () => {
    const b = broker(2);
    let running = 0;
    let most = 0;
    b.add('t', async (_p, body) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      if (body.n === 4) throw new Error('late failure');
    });
    b.add('t', (_p, body) => ({
      // a thenable that is not a Promise: still awaited before the message counts as done
      // biome-ignore lint/suspicious/noThenProperty: the point of the test
      then: (ok: (v: unknown) => void) => setTimeout(() => ok(body.n === 5 ? 'x' : undefined), 1),
    }));
    const batch = [1, 2, 3, 4, 5, 6].map((n) => incoming(n));
    const results = dispatch(b, batch);
    expect(results).toBeInstanceOf(Promise);
    const r = await results;
    expect(most).toBe(2);
    expect(kinds(r)).toEqual([
      'ack',
      'ack',
      'ack',
      'retry',
      // message 5's second handler replied; with no reply address the reply is dropped
      'ack',
      'ack',
    ]);
    expect(b.stats).toMatchObject({ delivered: 6, acked: 5, retried: 1 });
  });

  it('stop() waits for a message whose handler is still running', async () => {
    const b = broker();
    let finished = false;
    b.add('t', async () => {
      await new Promise((r) => setTimeout(r, 20));
      finished = true;
    });
    const results = dispatch(b, [incoming(1)]);
    await b.stop();
    expect(finished).toBe(true);
    expect(kinds(await results)).toEqual(['ack']);
  });

  it('undecodable and unknown-target messages are decided synchronously too', async () => {
    const b = new MemoryBroker({ hub: new MemoryHub(), logger: false, unknownTarget: 'discard' });
    b.add('t', () => {});
    const r = dispatch(b, [
      incoming(1, { target: 'nobody' }),
      incoming(2, { text: '{broken', body: utf8.encode('{broken') }),
    ]);
    // dead-lettering goes through the transport, so that one is asynchronous
    const settled = await r;
    expect(kinds(settled)).toEqual(['ack', 'ack']);
    expect(b.stats).toMatchObject({ discarded: 1, deadLettered: 1 });
  });

  it('ordered: in order within a group, a failure fails the rest of its group, groups side by side', async () => {
    const b = broker(10);
    const log: string[] = [];
    b.add('t', async (_p, body) => {
      log.push(`start ${body.n}`);
      await new Promise((r) => setTimeout(r, body.slow ? 15 : 1));
      log.push(`end ${body.n}`);
      if (body.fail) throw new Error('boom');
    });
    const m = (n: number, groupKey: string | undefined, extra: object = {}) => {
      const text = JSON.stringify({ n, ...extra });
      return incoming(n, { groupKey, text, body: utf8.encode(text) });
    };
    const r = await dispatch(
      b,
      [
        m(1, 'a', { slow: true }),
        m(2, 'b', { fail: true }),
        m(3, 'a'),
        m(4, 'b'),
        m(5, undefined),
        m(6, 'a'),
      ],
      { ordered: true },
    );
    expect(kinds(r)).toEqual(['ack', 'retry', 'ack', 'retry', 'ack', 'ack']);
    // 4 never ran: an earlier message of its group failed
    expect(log).not.toContain('start 4');
    // group a in order, each after the previous ended; b and 5 did not wait for a
    const at = (e: string) => log.indexOf(e);
    expect(at('end 1')).toBeLessThan(at('start 3'));
    expect(at('end 3')).toBeLessThan(at('start 6'));
    expect(at('start 2')).toBeLessThan(at('end 1'));
    expect(at('start 5')).toBeLessThan(at('end 1'));
  });

  it('ordered with synchronous handlers answers synchronously, still failing the rest of a group', () => {
    const b = broker(10);
    const ran: number[] = [];
    b.add('t', (_p, body) => {
      ran.push(body.n);
      if (body.n === 1) throw new Error('boom');
    });
    const r = dispatch(
      b,
      [1, 2, 3, 4].map((n) => incoming(n, { groupKey: n % 2 ? 'odd' : 'even' })),
      { ordered: true },
    );
    expect(Array.isArray(r)).toBe(true);
    expect(kinds(r as Verdict[])).toEqual(['retry', 'ack', 'retry', 'ack']);
    expect(ran).toEqual([1, 2, 4]);
  });
});
