/**
 * The Service Bus peer through the unmodified `@azure/service-bus` client: sending,
 * receiving, batches, peek-lock completion, receive-and-delete, limits and scheduling.
 */
import { describe, expect, it } from 'vitest';
import { client, fresh, onPeer, sleep } from './helpers.ts';

describe.skipIf(!onPeer)('Service Bus peer: queues', () => {
  const sb = client();

  it('round-trips a message with its properties and a binary body', async () => {
    const q = fresh();
    const sender = sb.createSender(q);
    const body = Buffer.from([0, 1, 2, 254, 255]);
    await sender.sendMessages({
      body,
      messageId: 'm-1',
      subject: 'greeting',
      correlationId: 'corr-1',
      replyTo: 'replies',
      contentType: 'application/octet-stream',
      applicationProperties: { tenant: 'acme', n: 42, ok: true },
    });
    const receiver = sb.createReceiver(q);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m).toBeDefined();
    expect(Buffer.isBuffer(m!.body)).toBe(true);
    expect(Buffer.compare(m!.body, body)).toBe(0);
    expect(m).toMatchObject({
      messageId: 'm-1',
      subject: 'greeting',
      correlationId: 'corr-1',
      replyTo: 'replies',
      contentType: 'application/octet-stream',
      applicationProperties: { tenant: 'acme', n: 42, ok: true },
      deliveryCount: 0,
      state: 'active',
    });
    expect(m!.lockToken).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(m!.sequenceNumber!.toNumber()).toBeGreaterThan(0);
    expect(Math.abs(m!.enqueuedTimeUtc!.getTime() - Date.now())).toBeLessThan(10_000);
    expect(m!.lockedUntilUtc!.getTime()).toBeGreaterThan(Date.now() + 30_000);
    await receiver.completeMessage(m!);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
  });

  it('JSON bodies round-trip and a message without an id gets one', async () => {
    const q = fresh();
    await sb.createSender(q).sendMessages({ body: { hello: ['world', 1] } });
    const receiver = sb.createReceiver(q, { receiveMode: 'receiveAndDelete' });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m!.body).toEqual({ hello: ['world', 1] });
    expect(typeof m!.messageId).toBe('string');
    expect(String(m!.messageId).length).toBeGreaterThan(0);
  });

  it('sends a batch from createMessageBatch, whose size limit is 256 KB', async () => {
    const q = fresh();
    const sender = sb.createSender(q);
    const batch = await sender.createMessageBatch();
    expect(batch.maxSizeInBytes).toBe(262_144);
    for (let i = 0; i < 50; i++) {
      expect(batch.tryAddMessage({ body: `m${i}`, applicationProperties: { i } })).toBe(true);
    }
    expect(batch.tryAddMessage({ body: Buffer.alloc(262_144) })).toBe(false);
    await sender.sendMessages(batch);
    const receiver = sb.createReceiver(q, { receiveMode: 'receiveAndDelete' });
    const got: unknown[] = [];
    while (got.length < 50) {
      const ms = await receiver.receiveMessages(50, { maxWaitTimeInMs: 2000 });
      if (ms.length === 0) break;
      got.push(...ms.map((m) => m.body));
    }
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  });

  it('sequence numbers grow in send order', async () => {
    const q = fresh();
    await sb.createSender(q).sendMessages([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
    const ms = await sb
      .createReceiver(q, { receiveMode: 'receiveAndDelete' })
      .receiveMessages(3, { maxWaitTimeInMs: 3000 });
    const seqs = ms.map((m) => m.sequenceNumber!.toNumber());
    expect(ms.map((m) => m.body)).toEqual(['a', 'b', 'c']);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(3);
  });

  it('refuses a message over 256 KB', async () => {
    const q = fresh();
    await expect(
      sb.createSender(q).sendMessages({ body: Buffer.alloc(300_000) }),
    ).rejects.toThrow();
  });

  it('a completed message is gone; two receivers do not get the same message', async () => {
    const q = fresh();
    await sb.createSender(q).sendMessages([{ body: 1 }, { body: 2 }]);
    const r1 = sb.createReceiver(q);
    const r2 = sb.createReceiver(q);
    const [a] = await r1.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    const [b] = await r2.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect([a!.body, b!.body].sort()).toEqual([1, 2]);
    await r1.completeMessage(a!);
    await r2.completeMessage(b!);
    expect(await r1.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
    // Settling twice is refused by the client itself.
    await expect(r1.completeMessage(a!)).rejects.toThrow();
  });

  it('peeks without locking, including locked messages', async () => {
    const q = fresh();
    await sb.createSender(q).sendMessages([{ body: 'x' }, { body: 'y' }]);
    const receiver = sb.createReceiver(q);
    const [locked] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    const peeked = await receiver.peekMessages(10, { fromSequenceNumber: locked!.sequenceNumber! });
    expect(peeked.map((m) => m.body)).toEqual(['x', 'y']);
    expect(peeked[0]!.lockToken).toBeUndefined();
    await receiver.completeMessage(locked!);
  });

  it('holds a message sent with scheduledEnqueueTimeUtc until then; cancels scheduled ones', async () => {
    const q = fresh();
    const sender = sb.createSender(q);
    const at = new Date(Date.now() + 1500);
    await sender.sendMessages({ body: 'later', scheduledEnqueueTimeUtc: at });
    const [seq] = await sender.scheduleMessages({ body: 'never' }, new Date(Date.now() + 1500));
    await sender.cancelScheduledMessages(seq!);
    const receiver = sb.createReceiver(q, { receiveMode: 'receiveAndDelete' });
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 })).toHaveLength(0);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m!.body).toBe('later');
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime() - 50);
    await sleep(500);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
  });
});
