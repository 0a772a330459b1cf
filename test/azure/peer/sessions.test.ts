/**
 * Sessions on the Service Bus peer through `@azure/service-bus`: entities whose names start
 * with `session-` require sessions (the peer's config).
 */
import { ServiceBusClient, type ServiceBusError } from '@azure/service-bus';
import { describe, expect, inject, it } from 'vitest';
import { client, fresh, onPeer, sleep } from './helpers.ts';

describe.skipIf(!onPeer)('Service Bus peer: sessions', () => {
  const sb = client();

  async function sendTo(q: string): Promise<void> {
    await sb.createSender(q).sendMessages([
      { body: 'a1', sessionId: 'a' },
      { body: 'b1', sessionId: 'b' },
      { body: 'a2', sessionId: 'a' },
      { body: 'b2', sessionId: 'b' },
      { body: 'a3', sessionId: 'a' },
    ]);
  }

  it('a session receiver gets only its session, in order; the next session is the other one', async () => {
    const q = fresh('session-');
    await sendTo(q);
    const a = await sb.acceptSession(q, 'a');
    expect(a.sessionId).toBe('a');
    expect(a.sessionLockedUntilUtc!.getTime()).toBeGreaterThan(Date.now() + 30_000);
    const got = await a.receiveMessages(10, { maxWaitTimeInMs: 1000 });
    expect(got.map((m) => m.body)).toEqual(['a1', 'a2', 'a3']);
    expect(got.every((m) => m.sessionId === 'a')).toBe(true);
    for (const m of got) await a.completeMessage(m);
    const next = await sb.acceptNextSession(q);
    expect(next.sessionId).toBe('b');
    const bs = await next.receiveMessages(10, { maxWaitTimeInMs: 1000 });
    expect(bs.map((m) => m.body)).toEqual(['b1', 'b2']);
    for (const m of bs) await next.completeMessage(m);
    await Promise.all([a.close(), next.close()]);
  });

  it('a locked session cannot be accepted twice; closing the receiver frees it', async () => {
    const q = fresh('session-');
    await sendTo(q);
    const first = await sb.acceptSession(q, 'a');
    const err = await sb.acceptSession(q, 'a').catch((e: unknown) => e);
    expect((err as ServiceBusError).code).toBe('SessionCannotBeLocked');
    // acceptNextSession skips the locked session.
    const other = await sb.acceptNextSession(q);
    expect(other.sessionId).toBe('b');
    const [m] = await first.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    expect(m!.body).toBe('a1');
    await first.close(); // a1 was not settled: it comes back with the session
    const again = await sb.acceptSession(q, 'a');
    const [m2] = await again.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    expect(m2!.body).toBe('a1');
    expect(m2!.deliveryCount).toBe(1);
    await again.completeMessage(m2!);
    await Promise.all([again.close(), other.close()]);
  });

  it('an abandoned message comes back first, keeping the session order', async () => {
    const q = fresh('session-');
    await sendTo(q);
    const a = await sb.acceptSession(q, 'a');
    const [m1] = await a.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    await a.abandonMessage(m1!);
    const again = await a.receiveMessages(3, { maxWaitTimeInMs: 1000 });
    expect(again.map((m) => `${m.body}#${m.deliveryCount}`)).toEqual(['a1#1', 'a2#0', 'a3#0']);
    for (const m of again) await a.completeMessage(m);
    await a.close();
  });

  it('keeps session state', async () => {
    const q = fresh('session-');
    await sendTo(q);
    const a = await sb.acceptSession(q, 'a');
    expect(await a.getSessionState()).toBeNull();
    await a.setSessionState({ step: 2 });
    expect(await a.getSessionState()).toEqual({ step: 2 });
    await a.close();
  });

  it('a session lock expires without renewal; renewSessionLock keeps it', async () => {
    const q = fresh('session-lock2s-');
    await sendTo(q);
    const kept = await sb.acceptSession(q, 'b', { maxAutoLockRenewalDurationInMs: 0 });
    const lost = await sb.acceptSession(q, 'a', { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await lost.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    for (let i = 0; i < 3; i++) {
      await sleep(800);
      const until = await kept.renewSessionLock();
      expect(until.getTime()).toBeGreaterThan(Date.now() + 1500);
    }
    // 2.4 s later: 'a' is free again and its message comes back; 'b' is still held.
    const err = await lost.completeMessage(m!).catch((e: unknown) => e);
    expect(err).toBeDefined();
    const again = await sb.acceptSession(q, 'a');
    const [m2] = await again.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    expect(`${m2!.body}#${m2!.deliveryCount}`).toBe('a1#1');
    await again.completeMessage(m2!);
    const err2 = await sb.acceptSession(q, 'b').catch((e: unknown) => e);
    expect((err2 as ServiceBusError).code).toBe('SessionCannotBeLocked');
    await Promise.all([kept.close(), again.close(), lost.close()]);
  });

  it('refuses plain receivers and messages without a session id on a session entity', async () => {
    const q = fresh('session-');
    await expect(sb.createSender(q).sendMessages({ body: 'no session' })).rejects.toThrow(
      /session/i,
    );
    await sendTo(q);
    await expect(
      sb.createReceiver(q).receiveMessages(1, { maxWaitTimeInMs: 1000 }),
    ).rejects.toThrow(/session/i);
    await expect(sb.acceptSession(fresh(), 'a')).rejects.toThrow(/does not require sessions/);
  });

  it('acceptNextSession waits for a session with messages, and times out when none comes', async () => {
    const q = fresh('session-');
    const pending = sb.acceptNextSession(q);
    await sleep(300);
    await sb.createSender(q).sendMessages({ body: 'late', sessionId: 'late' });
    const r = await pending;
    expect(r.sessionId).toBe('late');
    await r.close();

    const quick = new ServiceBusClient(inject('serviceBusConnectionString'), {
      retryOptions: { maxRetries: 0, timeoutInMs: 1000 },
    });
    const t0 = Date.now();
    await expect(quick.acceptNextSession(fresh('session-'))).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(5000);
    await quick.close();
  });
});
