import type { Broker } from './broker.ts';
import { InvalidArgumentError } from './errors.ts';

/**
 * Holds named brokers and starts and stops them together (the seed's `asab.MOMService`).
 *
 * @example
 * ```ts
 * const mom = new MOMService();
 * mom.register('orders', new SqsBroker({ queue: 'orders' }));
 * mom.get('orders').add('created', handleCreated);
 * await mom.start();
 * process.on('SIGTERM', () => mom.stop());
 * ```
 */
export class MOMService {
  readonly #brokers = new Map<string, Broker>();

  /** Adds a broker under a name; names are unique. */
  register<B extends Broker>(name: string, broker: B): B {
    if (this.#brokers.has(name))
      throw new InvalidArgumentError(`a broker named "${name}" is already registered`);
    this.#brokers.set(name, broker);
    return broker;
  }

  /** The broker registered under `name`; throws when there is none. */
  get<B extends Broker = Broker>(name: string): B {
    const b = this.#brokers.get(name);
    if (!b)
      throw new InvalidArgumentError(
        `no broker named "${name}" (registered: ${[...this.#brokers.keys()].join(', ') || 'none'})`,
      );
    return b as B;
  }

  /** Names of the registered brokers. */
  names(): string[] {
    return [...this.#brokers.keys()];
  }

  /** Starts every broker. */
  async start(): Promise<void> {
    await Promise.all([...this.#brokers.values()].map((b) => b.start()));
  }

  /** Stops every broker (each drains); reports every failure, not just the first. */
  async stop(): Promise<void> {
    const results = await Promise.allSettled([...this.#brokers.values()].map((b) => b.stop()));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length)
      throw new AggregateError(
        failed.map((f) => f.reason),
        `${failed.length} broker(s) failed to stop`,
      );
  }
}
