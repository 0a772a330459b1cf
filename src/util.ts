import { InvalidArgumentError } from './errors.ts';

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
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

export function positiveInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Resolves when `count()` reaches 0; re-checked on every `notify()`. */
export class Idle {
  #n = 0;
  #waiters: (() => void)[] = [];
  get count(): number {
    return this.#n;
  }
  enter(): void {
    this.#n++;
  }
  leave(): void {
    this.#n--;
    if (this.#n === 0) {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
    }
  }
  wait(): Promise<void> {
    return this.#n === 0 ? Promise.resolve() : new Promise((r) => this.#waiters.push(r));
  }
}
