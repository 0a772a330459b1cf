/**
 * The per-message path both ways of receiving share — `dispatch()` from a function entrypoint
 * and the receive loop of `start()` (receiver.ts): the handler slot, the order per group key,
 * and the dead-letter copy. Kept apart from the loop so a function bundle does not carry it.
 */
import { describeError, type Logger } from './log.ts';
import type { Publisher } from './publisher.ts';
import { ACK } from './router.ts';
import type { DeadLetterReason, IncomingMessage, Transport, Verdict } from './transport.ts';
import { BoundedMap, type Semaphore, setTail } from './util.ts';

/** Decides one message (route, handlers, replies). */
export type Decide = (message: IncomingMessage) => Verdict | Promise<Verdict>;

/** Leave the message for redelivery at once: `err` is why. */
export function retryNow(error: unknown): Verdict {
  return { kind: 'retry', delayMs: 0, error };
}

/** How long a failed group key stays closed beyond its retry delay, waiting for the failed message. */
const REOPEN_GRACE_MS = 30_000;
/** The error of a message released unrun (an earlier one of its group failed, or stopping). */
export class Released extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'Released';
  }
}
export const RELEASED_BY_GROUP: Verdict = Object.freeze({
  kind: 'retry',
  delayMs: 0,
  error: new Released('an earlier message of its group key failed'),
});
/** A verdict that released the message unrun (see {@link Released}). */
export function isRelease(v: Verdict): boolean {
  return v.kind === 'retry' && v.error instanceof Released;
}

/**
 * Runs messages one at a time per group key, in the order given; messages without a key run
 * at once. After a failure the key stays closed — later messages of it are released unrun —
 * until the failed message comes back (or its retry delay plus a grace passed), so nothing
 * overtakes it. Synchronous while no message of a key had to wait.
 */
export class OrderGate {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #closed = new BoundedMap<string, { readonly id: string; readonly until: number }>(
    10_000,
  );

  /** `fn(m)` in its turn, or `release(m)` instead when its key is closed. */
  run(
    m: IncomingMessage,
    fn: (m: IncomingMessage) => Verdict | Promise<Verdict>,
    release: (m: IncomingMessage) => Verdict | Promise<Verdict>,
  ): Verdict | Promise<Verdict> {
    const key = m.groupKey;
    if (key === undefined) return fn(m);
    const tail = this.#tails.get(key);
    // synchronous while no message of the key is in flight
    const v =
      tail === undefined
        ? this.#step(key, m, fn, release)
        : tail.then(() => this.#step(key, m, fn, release));
    if (v instanceof Promise) setTail(this.#tails, key, v);
    return v;
  }

  #step(
    key: string,
    m: IncomingMessage,
    fn: (m: IncomingMessage) => Verdict | Promise<Verdict>,
    release: (m: IncomingMessage) => Verdict | Promise<Verdict>,
  ): Verdict | Promise<Verdict> {
    const closed = this.#closed.get(key);
    if (closed) {
      if (closed.id === m.messageId || Date.now() >= closed.until) this.#closed.delete(key);
      else return release(m);
    }
    const v = fn(m);
    if (v instanceof Promise) return v.then((x) => this.#note(key, m, x));
    return this.#note(key, m, v);
  }

  #note(key: string, m: IncomingMessage, v: Verdict): Verdict {
    if (v.kind === 'retry' && !isRelease(v))
      this.#closed.set(key, { id: m.messageId, until: Date.now() + v.delayMs + REOPEN_GRACE_MS });
    return v;
  }
}

/** Takes a handler slot (waiting when none is free) around a decision; synchronous when it can be. */
export function withSlot(
  slots: Semaphore,
  decide: Decide,
  m: IncomingMessage,
): Verdict | Promise<Verdict> {
  if (!slots.tryAcquire()) return slots.acquire().then(() => inSlot(slots, decide, m));
  return inSlot(slots, decide, m);
}

/** The decision in a slot already taken, which it gives back when the decision is made. */
function inSlot(slots: Semaphore, decide: Decide, m: IncomingMessage): Verdict | Promise<Verdict> {
  let v: Verdict | Promise<Verdict>;
  try {
    v = decide(m);
  } catch (err) {
    slots.release();
    return retryNow(err);
  }
  if (v instanceof Promise) return v.then(releaseThen(slots), releaseFailed(slots));
  slots.release();
  return v;
}

const releaseThen = (slots: Semaphore) => (v: Verdict) => {
  slots.release();
  return v;
};
const releaseFailed =
  (slots: Semaphore) =>
  (err: unknown): Verdict => {
    slots.release();
    return retryNow(err);
  };

/** What settling needs from the broker. */
export interface SettleContext {
  readonly transport: Transport;
  readonly publisher: Publisher;
  readonly logger: Logger;
  /** Aborted by stop(): cuts retry holds short. */
  readonly stopping: AbortSignal;
}

/**
 * Sends the dead-letter copy of `m` (copy platforms); resolves `ack` once the service took it,
 * or a retry when it could not be sent (logged).
 */
export async function sendDeadLetterCopy(
  ctx: SettleContext,
  m: IncomingMessage,
  reason: DeadLetterReason,
): Promise<Verdict> {
  try {
    const address = ctx.transport.deadLetterAddress;
    if (!address)
      throw new Error(
        `the ${ctx.transport.capabilities.name} transport has no dead-letter address`,
      );
    await ctx.publisher.deadLetter(m, reason, await address.call(ctx.transport, m));
    return ACK;
  } catch (err) {
    ctx.logger.error('dead-lettering failed; message left for redelivery', {
      messageId: m.messageId,
      reason: reason.code,
      error: describeError(err),
    });
    return retryNow(err);
  }
}
