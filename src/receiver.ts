/**
 * The receive side the core owns for every platform: the loop over a transport's sources,
 * the concurrency bound, order per group key (also after a failure), in-flight counting and
 * draining, one receive-failure backoff, ack batching, lock extension, and settlement by
 * verdict — including the dead-letter copy — so a transport only translates.
 *
 * The pipeline of one message reads in order: receive → route → run handlers → send replies
 * (the {@link Router}) → settle (here).
 */
import { describeError, type Logger } from './log.ts';
import {
  isRelease,
  OrderGate,
  RELEASED_BY_GROUP,
  Released,
  type SettleContext,
  sendDeadLetterCopy,
} from './per-message.ts';
import type { IncomingMessage, Source, Verdict } from './transport.ts';
import { Idle, sleep, soon } from './util.ts';

/** Receive-failure backoff: from 250 ms doubling to 30 s. */
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;

const RELEASED_BY_STOP: Verdict = Object.freeze({
  kind: 'retry',
  delayMs: 0,
  error: new Released('the broker is stopping'),
});

/** Collects acks of one source into batches of `maxAckBatch`, flushed on the next turn. */
class AckBatch {
  readonly #source: Source;
  readonly #logger: Logger;
  readonly #max: number;
  #ids: unknown[] = [];
  #scheduled = false;
  readonly #inflight = new Idle();
  /** The source's synchronous ack, if it has one (then nothing is batched here). */
  readonly #now: ((id: unknown) => void) | undefined;

  constructor(source: Source, logger: Logger) {
    this.#source = source;
    this.#logger = logger;
    this.#max = Math.max(1, source.maxAckBatch ?? 1);
    this.#now = source.ackNow?.bind(source);
  }

  add(id: unknown): void {
    if (this.#now !== undefined) {
      try {
        this.#now(id);
      } catch (err) {
        this.#logger.warn('acknowledging failed; the message will be redelivered', {
          source: this.#source.name,
          count: 1,
          error: describeError(err),
        });
      }
      return;
    }
    this.#ids.push(id);
    if (this.#ids.length >= this.#max) this.#send();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      soon(() => {
        this.#scheduled = false;
        this.#send();
      });
    }
  }

  #send(): void {
    while (this.#ids.length > 0) {
      const ids = this.#ids.splice(0, this.#max);
      this.#inflight.enter();
      this.#source
        .ack(ids)
        .catch((err: unknown) =>
          this.#logger.warn('acknowledging failed; the messages will be redelivered', {
            source: this.#source.name,
            count: ids.length,
            error: describeError(err),
          }),
        )
        .finally(() => this.#inflight.leave());
    }
  }

  async flush(): Promise<void> {
    this.#send();
    await this.#inflight.wait();
  }
}

/**
 * The loop over one source: receives while it has room (at most `budget` messages in hand),
 * runs each through `decide` under the order gate, and settles it by its verdict.
 */
export class Consumer {
  readonly #source: Source;
  readonly #budget: number;
  readonly #decide: (m: IncomingMessage) => Verdict | Promise<Verdict>;
  readonly #ctx: SettleContext;
  readonly #inflight: Idle;
  readonly #acks: AckBatch;
  /** Order per group key, unless the source keeps it itself ({@link Source.ordersByKey}). */
  readonly #gate: OrderGate | undefined;
  readonly #abort = new AbortController();
  /** Messages in hand (taken, not yet settled). */
  #inHandCount = 0;
  /**
   * The messages in hand, kept only when locks are extended (a set that fills and empties with
   * every batch reallocates its table as it grows and shrinks).
   */
  readonly #inHand: Set<IncomingMessage> | undefined;
  /** In hand but being settled: their locks are no longer extended (the receipt may be gone). */
  readonly #settling = new WeakSet<IncomingMessage>();
  /** Whether locks are extended (else `#settling` is not kept: a WeakSet costs per message). */
  readonly #extends: boolean;
  /** The order gate's steps, made once (not two closures per keyed message). */
  readonly #runFn = (m: IncomingMessage) => this.#run(m);
  readonly #releaseFn = (m: IncomingMessage) => this.#settle(m, RELEASED_BY_GROUP);
  readonly #loops: Promise<void>[] = [];
  #reserved = 0;
  #stopping = false;
  /** Receive loops waiting for room (one per loop at most). */
  #roomWaiters: (() => void)[] = [];
  #extendTimer: ReturnType<typeof setInterval> | undefined;
  #stopped: Promise<void> | undefined;

  /**
   * @param decide runs one message with its slot taken (route, handlers, replies)
   * @param inflight the broker's in-flight count, which `stop()` drains
   */
  constructor(
    source: Source,
    budget: number,
    decide: (m: IncomingMessage) => Verdict | Promise<Verdict>,
    ctx: SettleContext,
    inflight: Idle,
  ) {
    this.#source = source;
    this.#budget = budget;
    this.#decide = decide;
    this.#ctx = ctx;
    this.#inflight = inflight;
    this.#acks = new AckBatch(source, ctx.logger);
    const every = source.extendEveryMs;
    this.#extends = source.extend !== undefined && every !== undefined && every > 0;
    this.#inHand = this.#extends ? new Set() : undefined;
    this.#gate = source.ordersByKey === true ? undefined : new OrderGate();
  }

  start(): void {
    const n = Math.max(1, this.#source.parallelReceives ?? 1);
    for (let i = 0; i < n; i++) this.#loops.push(this.#loop());
    if (this.#extends) {
      this.#extendTimer = setInterval(() => this.#extend(), this.#source.extendEveryMs);
      this.#extendTimer.unref?.();
    }
  }

  /** Stops receiving, lets what is in hand finish and settle, then closes the source. Once. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    this.#wakeAll();
    await Promise.all(this.#loops);
    while (this.#inHandCount > 0) await this.#settledOne();
    clearInterval(this.#extendTimer);
    await this.#acks.flush();
    try {
      await this.#source.close();
    } catch (err) {
      this.#ctx.logger.warn('closing a source failed', {
        source: this.#source.name,
        error: describeError(err),
      });
    }
  }

  #settledOne(): Promise<void> {
    return new Promise((resolve) => {
      this.#onSettled = resolve;
    });
  }
  #onSettled: (() => void) | undefined;

  async #loop(): Promise<void> {
    const source = this.#source;
    let failures = 0;
    while (!this.#stopping) {
      const room = this.#budget - this.#inHandCount - this.#reserved;
      if (room <= 0) {
        await new Promise<void>((r) => {
          this.#roomWaiters.push(r);
        });
        continue;
      }
      const n = Math.min(room, Math.max(1, source.maxReceive));
      this.#reserved += n;
      let messages: readonly IncomingMessage[];
      try {
        messages = await source.receive(n, this.#abort.signal);
      } catch (err) {
        this.#reserved -= n;
        if (this.#stopping) break;
        failures++;
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(failures - 1, 10));
        this.#ctx.logger.error('receiving failed; retrying', {
          source: source.name,
          failures,
          retryInMs: delay,
          error: describeError(err),
        });
        await sleep(delay * (0.8 + Math.random() * 0.4), this.#abort.signal);
        continue;
      }
      this.#reserved -= n;
      failures = 0;
      for (const m of messages) this.#take(m);
    }
  }

  #take(m: IncomingMessage): void {
    this.#inHandCount++;
    this.#inHand?.add(m);
    this.#inflight.enter();
    let v: Verdict | Promise<Verdict>;
    try {
      // no group key, or the source keeps the order: no gate
      const gate = this.#gate;
      if (m.groupKey === undefined || gate === undefined) v = this.#run(m);
      else v = gate.run(m, this.#runFn, this.#releaseFn);
    } catch (err) {
      v = this.#settle(m, { kind: 'retry', delayMs: 0, error: err });
    }
    if (v instanceof Promise)
      v.then(
        () => this.#done(m),
        () => this.#done(m),
      );
    else this.#done(m);
  }

  /** Runs and settles `m`, or releases it unrun once stop() began. */
  #run(m: IncomingMessage): Verdict | Promise<Verdict> {
    return this.#stopping ? this.#settle(m, RELEASED_BY_STOP) : this.#runAndSettle(m);
  }

  #done(m: IncomingMessage): void {
    this.#inHandCount--;
    this.#inHand?.delete(m);
    this.#inflight.leave();
    this.#wakeAll();
    const s = this.#onSettled;
    this.#onSettled = undefined;
    s?.();
  }

  #wakeAll(): void {
    if (this.#roomWaiters.length === 0) return;
    const w = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const f of w) f();
  }

  #runAndSettle(m: IncomingMessage): Verdict | Promise<Verdict> {
    const v = this.#decide(m);
    return v instanceof Promise ? v.then((x) => this.#settle(m, x)) : this.#settle(m, v);
  }

  /** Settles by the verdict; never rejects (a failed settlement is logged: the message comes back). */
  #settle(m: IncomingMessage, v: Verdict): Verdict | Promise<Verdict> {
    if (this.#extends) this.#settling.add(m);
    if (v.kind === 'ack') {
      this.#acks.add(m.ackId);
      return v;
    }
    return this.#settleSlow(m, v);
  }

  async #settleSlow(m: IncomingMessage, v: Verdict): Promise<Verdict> {
    const { transport, logger } = this.#ctx;
    const source = this.#source;
    try {
      if (v.kind === 'retry') {
        const failed = !isRelease(v);
        const caps = transport.capabilities;
        if (failed && !caps.nackDelay && v.delayMs > 0)
          await sleep(Math.min(v.delayMs, caps.retryHoldMs ?? 0), this.#ctx.stopping);
        await source.nack(m.ackId, v.delayMs, failed);
        return v;
      }
      if (v.kind === 'dead-letter') {
        if (transport.capabilities.deadLetter === 'native' && source.deadLetter) {
          await source.deadLetter(m.ackId, v.reason);
          return v;
        }
        const copied = await sendDeadLetterCopy(this.#ctx, m, v.reason);
        if (copied.kind === 'ack') this.#acks.add(m.ackId);
        else {
          // the copy could not be sent: back to the platform, not at once (no hot loop)
          const caps = transport.capabilities;
          if (!caps.nackDelay) await sleep(caps.retryHoldMs ?? 0, this.#ctx.stopping);
          await source.nack(m.ackId, 1000, true);
        }
        return copied;
      }
    } catch (err) {
      logger.warn('settling a message failed; it will be redelivered', {
        source: source.name,
        messageId: m.messageId,
        verdict: v.kind,
        error: describeError(err),
      });
    }
    return v;
  }

  #extend(): void {
    const inHand = this.#inHand;
    if (inHand === undefined || inHand.size === 0) return;
    const ids: unknown[] = [];
    for (const m of inHand) if (!this.#settling.has(m)) ids.push(m.ackId);
    if (ids.length === 0) return;
    this.#source.extend!(ids).catch((err: unknown) =>
      this.#ctx.logger.warn('extending locks failed', {
        source: this.#source.name,
        count: ids.length,
        error: describeError(err),
      }),
    );
  }
}
