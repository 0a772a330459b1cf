import { type CloudmomError, InvalidArgumentError } from './errors.ts';

/** Throws `E` (InvalidArgumentError by default) unless `value` is a non-empty string. */
export function checkNonEmpty(
  value: unknown,
  name: string,
  E: new (message: string) => CloudmomError = InvalidArgumentError,
): void {
  if (typeof value !== 'string' || value === '') throw new E(`${name} must be a non-empty string`);
}

/** `value` when it is one of `allowed`; else throws InvalidArgumentError listing them. */
export function checkOneOf<T>(value: unknown, allowed: readonly T[], name: string): T {
  if (!allowed.includes(value as T))
    throw new InvalidArgumentError(`${name} must be one of ${allowed.map(String).join(', ')}`);
  return value as T;
}

/** Rejects option keys that are not in `allowed` (typos fail loudly). */
export function checkOptionKeys(
  options: object | undefined,
  allowed: readonly string[],
  where: string,
): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object')
    throw new InvalidArgumentError(`${where}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new InvalidArgumentError(
        `${where}: unknown option "${key}" (known: ${allowed.join(', ')})`,
      );
    }
  }
}

/** Splits an options object into the keys in `keys` and the rest. */
export function pick<T extends object, K extends keyof T>(
  options: T,
  keys: readonly K[],
): [Pick<T, K>, Omit<T, K>] {
  const picked = {} as Pick<T, K>;
  const rest = { ...options };
  for (const k of keys) {
    if (k in options) picked[k] = options[k];
    delete (rest as Partial<T>)[k];
  }
  return [picked, rest];
}

/** Bounds how many async tasks run at once. */
export class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  /** Takes a free slot at once, if there is one (never ahead of waiters: a free slot means none). */
  tryAcquire(): boolean {
    if (this.#free > 0) {
      this.#free--;
      return true;
    }
    return false;
  }
  /** Takes a slot, waiting for one when none is free. */
  acquire(): Promise<void> {
    return this.tryAcquire()
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

/** One frozen empty object for every "none given" (headers, options): never written to. */
export const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

/**
 * `value` when it is a number of at least `min`: with `min` 1 a positive integer, with 0 any
 * finite number ≥ 0; else an InvalidArgumentError naming `name`.
 */
export function checkNumber(value: unknown, name: string, min: 0 | 1 = 1): number {
  if (
    typeof value !== 'number' ||
    !(min ? Number.isInteger(value) : Number.isFinite(value)) ||
    value < min
  )
    throw new InvalidArgumentError(
      `${name} must be ${min ? 'a positive integer' : 'a number ≥ 0'}, got ${String(value)}`,
    );
  return value;
}

/** Resolves when `count()` reaches 0; re-checked on every `notify()`. */
export class Idle {
  #n = 0;
  #waiters: (() => void)[] = [];
  enter(): void {
    this.#n++;
  }
  leave(): void {
    if (--this.#n === 0) for (const f of this.#waiters.splice(0)) f();
  }
  wait(): Promise<void> {
    return this.#n === 0 ? Promise.resolve() : new Promise((r) => this.#waiters.push(r));
  }
}

/** A map that keeps at most `max` entries, forgetting the least recently set. */
export class BoundedMap<K, V> {
  readonly #max: number;
  readonly #items = new Map<K, V>();
  constructor(max: number) {
    this.#max = max;
  }
  get(k: K): V | undefined {
    return this.#items.get(k);
  }
  set(k: K, v: V): this {
    this.#items.delete(k);
    this.#items.set(k, v);
    if (this.#items.size > this.#max) this.#items.delete(this.#items.keys().next().value!);
    return this;
  }
  delete(k: K): boolean {
    return this.#items.delete(k);
  }
  values(): IterableIterator<V> {
    return this.#items.values();
  }
}

/**
 * A set that keeps at most `max` entries, forgetting the oldest: for anything keyed by data
 * from a message (targets seen, addresses looked up), so memory cannot grow with input.
 */
export class BoundedSet extends BoundedMap<string, true> {
  has(v: string): boolean {
    return this.get(v) !== undefined;
  }
  /** Adds `v`; true when it was not there. */
  add(v: string): boolean {
    if (this.has(v)) return false;
    this.set(v, true);
    return true;
  }
}

function noop(): void {}

/**
 * Makes `p` the tail of `key`'s chain in `tails` (what the next in line waits for: settled
 * either way), and removes it once settled unless a later one took its place. One chain per
 * key: the order gate's group keys, the sends to one FIFO queue.
 */
export function setTail(tails: Map<string, Promise<void>>, key: string, p: Promise<unknown>): void {
  const t = p.then(noop, noop);
  tails.set(key, t);
  void t.then(() => {
    if (tails.get(key) === t) tails.delete(key);
  });
}

/** Waits `ms`, or less when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A pending {@link soon} or timeout. */
export type Timer = ReturnType<typeof setTimeout> | { readonly immediate: unknown };

const hasImmediate = typeof globalThis.setImmediate === 'function';

/**
 * Runs `fn` after the current I/O turn: `setImmediate` where the runtime has it (Node), else
 * `setTimeout(fn, 0)` (workerd without `nodejs_compat`, browsers).
 */
export function soon(fn: () => void): Timer {
  return hasImmediate ? { immediate: globalThis.setImmediate(fn) } : setTimeout(fn, 0);
}

/** Cancels a {@link soon} or a `setTimeout`. */
export function cancel(t: Timer): void {
  // a timeout is a number or a Timeout object: neither has `immediate`
  const immediate = (t as { immediate?: ReturnType<typeof setImmediate> }).immediate;
  if (immediate) globalThis.clearImmediate(immediate);
  else clearTimeout(t as ReturnType<typeof setTimeout>);
}

/**
 * Bytes as a Node `Buffer` without copying them (the codecs give one in Node; other bytes are
 * wrapped): for the adapters whose SDKs need a Buffer (a plain Uint8Array is walked byte by
 * byte, or encoded as a value instead of data). Node only: it reads the global `Buffer`.
 *
 * @example
 * ```ts
 * asBuffer(message.body); // the same bytes, a Buffer
 * ```
 */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
