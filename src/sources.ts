/**
 * Building blocks for transports whose SDK pushes messages (streams with flow control) or
 * commits cumulatively (logs). Shared here so each platform only translates.
 */

/**
 * A buffer between an SDK that pushes messages (Pub/Sub streaming pull, AMQP basic.consume,
 * a Kafka fetch loop) and the core, which takes them with `receive`. Its size is bounded by
 * the SDK's flow control (at most the broker's concurrency unsettled), not by the buffer.
 *
 * @example
 * ```ts
 * const buffer = new PushBuffer<IncomingMessage>();
 * subscription.on('message', (m) => buffer.push(decode(m)));
 * const source = { receive: (max, signal) => buffer.take(max, signal), ... };
 * ```
 */
export class PushBuffer<T> {
  #items: T[] = [];
  #waiter: (() => void) | undefined;
  #error: unknown;
  #closed = false;
  /** The signal whose abort wakes a waiting `take` (listened to once). */
  #signal: AbortSignal | undefined;

  /** Messages waiting to be taken. */
  get length(): number {
    return this.#items.length;
  }

  /** Adds messages; wakes a waiting `take`. Ignored after `close()` (returns false). */
  push(...items: T[]): boolean {
    if (this.#closed) return false;
    this.#items.push(...items);
    this.#wake();
    return true;
  }

  /** Makes the next `take` reject with `err` (a stream failed); later ones wait again. */
  fail(err: unknown): void {
    this.#error = err;
    this.#wake();
  }

  /** Takes up to `max`, waiting for at least one unless `signal` aborts or the buffer closes. */
  async take(max: number, signal: AbortSignal): Promise<T[]> {
    for (;;) {
      if (this.#error !== undefined) {
        const err = this.#error;
        this.#error = undefined;
        throw err;
      }
      if (this.#items.length > 0) return this.#items.splice(0, max);
      if (this.#closed || signal.aborted) return [];
      if (this.#signal !== signal) {
        // one listener per signal, not one per wait: a consumer that keeps up with its
        // deliveries waits once per message or so
        this.#signal = signal;
        signal.addEventListener('abort', () => this.#wake(), { once: true });
      }
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
  }

  /** Stops accepting; a waiting `take` resolves. Returns what was still buffered (to release). */
  close(): T[] {
    this.#closed = true;
    const rest = this.#items;
    this.#items = [];
    this.#wake();
    return rest;
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}

/**
 * Commit watermarks of a log (Kafka): per partition, the offset to commit is one past the
 * highest offset below which every received offset is settled. A record settled out of order
 * waits until the ones before it are settled, so a commit never skips an unsettled record.
 *
 * @example
 * ```ts
 * const offsets = new OffsetTracker();
 * offsets.received('t-0', 5n); offsets.received('t-0', 6n);
 * offsets.settled('t-0', 6n); // undefined: 5 is still open
 * offsets.settled('t-0', 5n); // 7n: commit 7
 * ```
 */
export class OffsetTracker {
  readonly #partitions = new Map<
    string,
    { offsets: bigint[]; head: number; done: Set<bigint>; max: bigint }
  >();

  /** Notes a record handed to the core (offsets of a partition arrive in increasing order). */
  received(partition: string, offset: bigint): void {
    let p = this.#partitions.get(partition);
    if (!p) {
      p = { offsets: [], head: 0, done: new Set(), max: -1n };
      this.#partitions.set(partition, p);
    }
    const list = p.offsets;
    if (list.length === p.head || offset > list[list.length - 1]!) list.push(offset);
    else {
      // out of order (rare: a re-fetch): keep the open part sorted
      let i = list.length;
      while (i > p.head && list[i - 1]! > offset) i--;
      if (list[i - 1] === offset && i > p.head) return;
      list.splice(i, 0, offset);
    }
    if (offset > p.max) p.max = offset;
  }

  /**
   * Marks a record settled; answers the offset to commit when the watermark moved, else
   * undefined. Amortized O(1): the settled head of the open offsets is popped.
   */
  settled(partition: string, offset: bigint): bigint | undefined {
    const p = this.#partitions.get(partition);
    if (!p || p.head === p.offsets.length || offset < p.offsets[p.head]! || p.done.has(offset))
      return undefined;
    if (offset !== p.offsets[p.head]) {
      if (offset <= p.max) p.done.add(offset);
      return undefined;
    }
    p.head++;
    while (p.head < p.offsets.length && p.done.delete(p.offsets[p.head]!)) p.head++;
    if (p.head > 1024 && p.head * 2 > p.offsets.length) {
      p.offsets = p.offsets.slice(p.head);
      p.head = 0;
    }
    return p.head < p.offsets.length ? p.offsets[p.head]! : p.max + 1n;
  }

  /** Records of a partition still unsettled. */
  pending(partition: string): number {
    const p = this.#partitions.get(partition);
    return p ? p.offsets.length - p.head - p.done.size : 0;
  }

  /** Forgets a partition (revoked in a rebalance). */
  forget(partition: string): void {
    this.#partitions.delete(partition);
  }
}
