/**
 * `publishBatch`: several publishes checked together, queued together in the publisher's
 * batches, answered by one promise. {@link Broker} has it; the function-side brokers
 * (`cloudmom/aws/lambda`) leave it out of a function's bundle.
 */
import type { Slotted } from './batcher.ts';
import { CloudmomError, InvalidArgumentError, PublishBatchError } from './errors.ts';
import type { PublishEntry } from './options.ts';
import { type Encoded, PUBLISH_KEYS, type Publisher } from './publisher.ts';
import type { SendOutcome } from './transport.ts';

/** The keys of an entry: those of publish options, and its body and target. */
const ENTRY_KEYS = [...PUBLISH_KEYS, 'body', 'target'];

/**
 * Encodes every entry (a bad one throws its typed error, naming its index, before anything is
 * queued), then queues them all; resolves with the ids in entry order, or rejects with a
 * {@link PublishBatchError}.
 */
export function publishBatch(
  publisher: Publisher,
  entries: readonly PublishEntry[],
): Promise<string[]> {
  if (!Array.isArray(entries))
    throw new InvalidArgumentError('publishBatch: entries must be an array of { body, target }');
  const encoded: Encoded[] = entries.map((e, i) => {
    try {
      // an entry that is not an object has no target: refused as such
      return publisher.encode(e?.body, e?.target, e, undefined, ENTRY_KEYS);
    } catch (err) {
      if (err instanceof CloudmomError) err.message = `publishBatch entry ${i}: ${err.message}`;
      throw err;
    }
  });
  if (encoded.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) =>
    publisher.enqueueAll(encoded, new Group(encoded.length, resolve, reject)),
  );
}

/** One call's messages: an id or an error per slot, answered once every slot has one. */
class Group implements Slotted {
  readonly #results: (string | CloudmomError)[];
  #left: number;
  #failed = false;
  readonly #resolve: (ids: string[]) => void;
  readonly #reject: (err: PublishBatchError) => void;

  constructor(n: number, resolve: (ids: string[]) => void, reject: (err: unknown) => void) {
    this.#results = new Array(n);
    this.#left = n;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  settle(slot: number, id: string | undefined, outcome: SendOutcome): void {
    // the publisher wraps every platform error: a failed outcome holds a CloudmomError
    this.#results[slot] = id ?? ((outcome as { error: unknown }).error as CloudmomError);
    if (id === undefined) this.#failed = true;
    if (--this.#left > 0) return;
    if (!this.#failed) this.#resolve(this.#results as string[]);
    else
      this.#reject(
        new PublishBatchError(
          this.#results.map((r) =>
            typeof r === 'string' ? { ok: true, messageId: r } : { ok: false, error: r },
          ),
        ),
      );
  }
}
