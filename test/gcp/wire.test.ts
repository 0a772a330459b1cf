/**
 * The Pub/Sub wire mapping's pure functions (no peer): dead-letter copies fitted into
 * Pub/Sub's limits from `OutgoingMessage.deadLetter`, their size, the error mapping the core
 * wraps with once, and headers as data.
 */
import { describe, expect, it } from 'vitest';
import {
  deadLetterAttributes,
  errorCode,
  fromWire,
  isRetryable,
  LIMITS,
  measure,
  toAttributes,
} from '../../adapters/gcp/wire.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const base: OutgoingMessage = {
  body: new TextEncoder().encode('{"a":1}'),
  target: 'orders',
  messageId: 'm-1',
  contentType: 'application/json',
  headers: { tenant: 't1' },
  correlationId: 'c-1',
};

describe('gcp wire', () => {
  it('a dead-letter copy carries the reason, the description, the delivery count and the original id', () => {
    const a = toAttributes({
      ...base,
      destination: 'projects/p/topics/dl',
      deadLetter: { code: 'handler-failed', description: 'TypeError: boom', deliveryCount: 5 },
    });
    expect(a).toEqual({
      tenant: 't1',
      target: 'orders',
      content_type: 'application/json',
      correlation_id: 'c-1',
      dead_letter_reason: 'handler-failed',
      dead_letter_description: 'TypeError: boom',
      delivery_count: '5',
      message_id: 'm-1',
    });
  });

  it('a copy of a message without a target has no target attribute', () => {
    const a = deadLetterAttributes({
      ...base,
      target: '',
      deadLetter: { code: 'missing-target', description: 'no target', deliveryCount: 1 },
    });
    expect(a.target).toBeUndefined();
    expect(a.dead_letter_reason).toBe('missing-target');
  });

  it('a copy always fits: 100 attributes at most, names Pub/Sub refuses skipped, values cut to 1024 bytes', () => {
    const headers: Record<string, string> = { googX: 'v', ['k'.repeat(300)]: 'v' };
    for (let i = 0; i < 120; i++) headers[`h${i}`] = 'é'.repeat(600);
    const copy: OutgoingMessage = {
      ...base,
      headers,
      deadLetter: { code: 'schema-invalid', description: 'd'.repeat(5000), deliveryCount: 1 },
    };
    const a = deadLetterAttributes(copy);
    expect(Object.keys(a).length).toBe(LIMITS.attributes);
    expect(a.googX).toBeUndefined();
    expect(a['k'.repeat(300)]).toBeUndefined();
    for (const [k, v] of Object.entries(a)) {
      expect(Buffer.byteLength(k)).toBeLessThanOrEqual(256);
      expect(Buffer.byteLength(v)).toBeLessThanOrEqual(1024);
    }
    expect(a.dead_letter_reason).toBe('schema-invalid');
    expect(a.dead_letter_description!.endsWith('…')).toBe(true);
    // measure counts what is written
    let n = copy.body.byteLength;
    for (const [k, v] of Object.entries(a)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
    expect(measure(copy)).toBe(n);
  });

  it('maps gRPC errors once: NOT_FOUND is not-found and final; UNAVAILABLE retryable', () => {
    const grpc = (code: number) => Object.assign(new Error(`${code}`), { code });
    expect(errorCode(grpc(5))).toBe('not-found');
    expect(isRetryable(grpc(5))).toBe(false);
    expect(errorCode(grpc(14))).toBe('send-failed');
    expect(isRetryable(grpc(14))).toBe(true);
    expect(isRetryable(grpc(8))).toBe(true); // RESOURCE_EXHAUSTED
    expect(isRetryable(grpc(7))).toBe(false); // PERMISSION_DENIED
    expect(isRetryable(grpc(3))).toBe(false); // INVALID_ARGUMENT
    expect(isRetryable(new Error('socket hang up'))).toBe(true);
  });

  it('reads every attribute name as data, __proto__ included', () => {
    const attributes = JSON.parse('{"__proto__":"p","target":"t","hasOwnProperty":"h"}');
    const m = fromWire({ id: '1', data: new Uint8Array(0), attributes, deliveryAttempt: 0 }, null);
    expect(Object.keys(m.headers).sort()).toEqual(['__proto__', 'hasOwnProperty']);
    expect(m.target).toBe('t');
    expect(m.deliveryCount).toBe(1);
    const out = toAttributes({ ...base, headers: m.headers });
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toBe('p');
  });
});
