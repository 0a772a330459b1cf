/**
 * Settlement on the Service Bus peer through `@azure/service-bus`: abandon, dead-letter,
 * max delivery count, lock expiry, lock renewal, defer.
 */
import { ServiceBusError } from '@azure/service-bus';
import { describe, expect, it } from 'vitest';
import { client, fresh, onPeer, sleep } from './helpers.ts';

describe.skipIf(!onPeer)('Service Bus peer: settlement', () => {
  const sb = client();

  it('abandon puts the message back with deliveryCount + 1', async () => {
    const q = fresh();
    await sb.createSender(q).sendMessages({ body: 'again', messageId: 'ab-1' });
    const receiver = sb.createReceiver(q);
    const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect(first!.deliveryCount).toBe(0);
    await receiver.abandonMessage(first!, { note: 'tried' });
    const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect(second!.messageId).toBe('ab-1');
    expect(second!.deliveryCount).toBe(1);
    expect(second!.sequenceNumber!.toNumber()).toBe(first!.sequenceNumber!.toNumber());
    expect(second!.lockToken).not.toBe(first!.lockToken);
    expect(second!.applicationProperties).toMatchObject({ note: 'tried' });
    await receiver.completeMessage(second!);
  });

  it('dead-letters with reason and description; the DLQ reads them back', async () => {
    const q = fresh();
    await sb.createSender(q).sendMessages({
      body: { n: 1 },
      subject: 'order',
      applicationProperties: { tenant: 'acme' },
    });
    const receiver = sb.createReceiver(q);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    await receiver.deadLetterMessage(m!, {
      deadLetterReason: 'InvalidBody',
      deadLetterErrorDescription: 'n must be even',
    });
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
    const dlq = sb.createReceiver(q, { subQueueType: 'deadLetter' });
    const [d] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect(d).toMatchObject({
      body: { n: 1 },
      subject: 'order',
      deadLetterReason: 'InvalidBody',
      deadLetterErrorDescription: 'n must be even',
      deadLetterSource: q,
      applicationProperties: { tenant: 'acme' },
    });
    await dlq.completeMessage(d!);
    // The explicit path works too.
    const byPath = sb.createReceiver(`${q}/$deadletterqueue`);
    expect(await byPath.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
  });

  it('after maxDeliveryCount deliveries the message goes to the DLQ (MaxDeliveryCountExceeded)', async () => {
    const q = fresh('max3-'); // maxDeliveryCount 3 in the peer's config
    await sb.createSender(q).sendMessages({ body: 'poison' });
    const receiver = sb.createReceiver(q);
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
      counts.push(m!.deliveryCount!);
      await receiver.abandonMessage(m!);
    }
    expect(counts).toEqual([0, 1, 2]);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
    const [d] = await sb
      .createReceiver(q, { subQueueType: 'deadLetter' })
      .receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect(d!.body).toBe('poison');
    expect(d!.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    expect(d!.deadLetterErrorDescription).toContain('3 delivery attempts');
    // Three earlier delivery attempts (the AMQP header counts prior attempts).
    expect(d!.deliveryCount).toBe(3);
  });

  it('an expired lock redelivers the message, and settling with the old lock fails', async () => {
    const q = fresh('lock2s-'); // lock duration 2 s in the peer's config
    await sb.createSender(q).sendMessages({ body: 'slow' });
    const receiver = sb.createReceiver(q, { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    const lockedFor = m!.lockedUntilUtc!.getTime() - Date.now();
    expect(lockedFor).toBeGreaterThan(1000);
    expect(lockedFor).toBeLessThanOrEqual(2100);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 })).toHaveLength(0);
    const [again] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 4000 });
    expect(again!.body).toBe('slow');
    expect(again!.deliveryCount).toBe(1);
    const err = await receiver.completeMessage(m!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceBusError);
    expect((err as ServiceBusError).code).toBe('MessageLockLost');
    await receiver.completeMessage(again!);
  });

  it('renewMessageLock keeps the lock past its duration', async () => {
    const q = fresh('lock2s-');
    await sb.createSender(q).sendMessages({ body: 'long job' });
    const receiver = sb.createReceiver(q, { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    const before = m!.lockedUntilUtc!.getTime();
    for (let i = 0; i < 3; i++) {
      await sleep(1000);
      const until = await receiver.renewMessageLock(m!);
      expect(until.getTime()).toBeGreaterThan(Date.now() + 1500);
    }
    expect(m!.lockedUntilUtc!.getTime()).toBeGreaterThan(before + 2500);
    // 3 s after receipt, past the 2 s lock: still ours, and nobody else got it.
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toHaveLength(0);
    await receiver.completeMessage(m!);
    await sleep(2500);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toHaveLength(0);
  });

  it('renewing a lost lock fails with MessageLockLost', async () => {
    const q = fresh('lock2s-');
    await sb.createSender(q).sendMessages({ body: 'x' });
    const receiver = sb.createReceiver(q, { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    await sleep(2300);
    const err = await receiver.renewMessageLock(m!).catch((e: unknown) => e);
    expect((err as ServiceBusError).code).toBe('MessageLockLost');
  });

  it('the client renews locks by itself while a message is held (auto lock renewal)', async () => {
    const q = fresh('lock2s-');
    await sb.createSender(q).sendMessages({ body: 'auto' });
    const receiver = sb.createReceiver(q, { maxAutoLockRenewalDurationInMs: 10_000 });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    await sleep(3500);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toHaveLength(0);
    await receiver.completeMessage(m!);
  });

  it('defers a message and receives it by sequence number', async () => {
    const q = fresh();
    await sb.createSender(q).sendMessages({ body: 'later' });
    const receiver = sb.createReceiver(q);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    await receiver.deferMessage(m!);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
    const [d] = await receiver.receiveDeferredMessages(m!.sequenceNumber!);
    expect(d!.body).toBe('later');
    expect(d!.state).toBe('deferred');
    await receiver.completeMessage(d!);
    await expect(receiver.receiveDeferredMessages(m!.sequenceNumber!)).rejects.toThrow();
  });
});
