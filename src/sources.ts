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
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.#waiter = undefined;
          resolve();
        };
        this.#waiter = done;
        signal.addEventListener('abort', done, { once: true });
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
    this.#waiter?.();
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
  readonly #partitions = new Map<string, { open: Set<bigint>; done: Set<bigint>; max: bigint }>();

  /** Notes a record handed to the core. */
  received(partition: string, offset: bigint): void {
    let p = this.#partitions.get(partition);
    if (!p) {
      p = { open: new Set(), done: new Set(), max: -1n };
      this.#partitions.set(partition, p);
    }
    p.open.add(offset);
    if (offset > p.max) p.max = offset;
  }

  /**
   * Marks a record settled; answers the offset to commit when the watermark moved, else
   * undefined.
   */
  settled(partition: string, offset: bigint): bigint | undefined {
    const p = this.#partitions.get(partition);
    if (!p || !p.open.has(offset)) return undefined;
    const lowest = minOf(p.open);
    p.open.delete(offset);
    if (offset !== lowest) {
      p.done.add(offset);
      return undefined;
    }
    // The lowest open one settled: the watermark is now the next still-open offset.
    const next = p.open.size === 0 ? p.max + 1n : minOf(p.open);
    for (const d of p.done) if (d < next) p.done.delete(d);
    return next;
  }

  /** Records of a partition still unsettled. */
  pending(partition: string): number {
    return this.#partitions.get(partition)?.open.size ?? 0;
  }

  /** Forgets a partition (revoked in a rebalance). */
  forget(partition: string): void {
    this.#partitions.delete(partition);
  }
}

function minOf(s: Set<bigint>): bigint {
  let m: bigint | undefined;
  for (const v of s) if (m === undefined || v < m) m = v;
  return m ?? 0n;
}
