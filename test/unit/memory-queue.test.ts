import { randomUUID } from 'node:crypto';
import { MemoryHub, MessageTooLargeError } from 'cloudmom';
import { describe, expect, it } from 'vitest';
import type { OutgoingMessage } from '../../src/transport.ts';

const msg = (extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  body: new TextEncoder().encode('x'),
  target: 't',
  messageId: randomUUID(),
  contentType: 'text/plain',
  headers: {},
  ...extra,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MemoryQueue', () => {
  it('hides a received message until its lock expires, then redelivers with receiveCount + 1', async () => {
    const q = new MemoryHub().queue('q', { visibilityTimeoutMs: 50 });
    q.send(msg());
    const [first] = q.receive(10);
    expect(first?.receiveCount).toBe(1);
    expect(q.receive(10)).toEqual([]);
    await sleep(80);
    const [second] = q.receive(10);
    expect(second?.receiveCount).toBe(2);
    expect(q.ack(first!.receipt)).toBe(false); // a stale lock cannot delete the redelivered message
    expect(q.ack(second!.receipt)).toBe(true);
    expect(q.depth + q.inFlight).toBe(0);
  });

  it('nack with a delay makes the message visible again later', async () => {
    const q = new MemoryHub().queue('q');
    q.send(msg());
    const [d] = q.receive(1);
    q.nack(d!.receipt, 60);
    expect(q.receive(1)).toEqual([]);
    await sleep(80);
    expect(q.receive(1)[0]?.receiveCount).toBe(2);
  });

  it('redrives to the dead-letter queue after maxReceiveCount receives', () => {
    const hub = new MemoryHub();
    const q = hub.queue('q', { maxReceiveCount: 2 });
    q.send(msg());
    for (let i = 0; i < 2; i++) q.nack(q.receive(1)[0]!.receipt);
    expect(q.receive(1)).toEqual([]);
    const [dead] = hub.queue('q.dlq').peekAll();
    expect(dead?.reason?.code).toBe('max-deliveries');
    expect(dead?.receiveCount).toBe(2);
  });

  it('delays delivery by delaySeconds and wakes listeners when due', async () => {
    const q = new MemoryHub().queue('q');
    let woke = 0;
    q.onChange(() => woke++);
    q.send(msg({ delaySeconds: 1 }));
    expect(q.receive(1)).toEqual([]);
    const before = woke;
    await sleep(1050);
    expect(woke).toBeGreaterThan(before);
    expect(q.receive(1)).toHaveLength(1);
  });

  it('delivers one message per group at a time, oldest first; other groups go on', () => {
    const q = new MemoryHub().queue('q');
    q.send(msg({ groupKey: 'a', target: 'a1' }));
    q.send(msg({ groupKey: 'a', target: 'a2' }));
    q.send(msg({ groupKey: 'b', target: 'b1' }));
    const first = q.receive(10);
    expect(first.map((d) => d.message.target)).toEqual(['a1', 'b1']);
    q.nack(first[0]!.receipt, 0);
    expect(q.receive(10).map((d) => d.message.target)).toEqual(['a1']); // a1 again before a2
  });

  it('refuses a message over the size limit', () => {
    const q = new MemoryHub().queue('q', { maxMessageBytes: 4 });
    expect(() => q.send(msg({ body: new Uint8Array(5) }), 5)).toThrow(MessageTooLargeError);
  });

  it('rejects unknown queue options', () => {
    expect(() => new MemoryHub().queue('q', { visibility: 1 } as never)).toThrow(/unknown option/);
  });
});
