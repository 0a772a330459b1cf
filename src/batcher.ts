import { SendError } from './errors.ts';
import type { Encoded } from './publisher.ts';
import type { OutgoingMessage, SendOutcome } from './transport.ts';
import { cancel, Idle, soon, type Timer } from './util.ts';

/**
 * A caller waiting for several messages (`publishBatch`): told each message's outcome by the
 * slot it was queued with (`id` undefined: not sent).
 */
export interface Slotted {
  settle(slot: number, id: string | undefined, outcome: SendOutcome): void;
}

/**
 * Who waits for a message: a `publish`'s resolve (a failure resolves it with a rejected
 * promise: no reject function kept per queued message), or the {@link Slotted} it belongs to.
 */
type Waiter = ((id: string | Promise<never>) => void) | Slotted;

/**
 * The messages queued for one destination and who waits for each, index by index (arrays
 * side by side: no object per message beyond its caller's promise). `slots`: a message's
 * index in its {@link Slotted} (0 for a publish's resolve).
 */
interface Queue {
  readonly messages: OutgoingMessage[];
  readonly waiters: Waiter[];
  readonly slots: number[];
  bytes: number;
  timer: Timer | undefined;
}

export interface BatcherLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly lingerMs: number;
}

/**
 * Collects publishes per destination into batches of at most `maxMessages` / `maxBytes`,
 * flushed when full or after `lingerMs`, and answers each caller with its own outcome.
 */
export class Batcher {
  readonly #queues = new Map<string, Queue>();
  readonly #inflight = new Idle();
  declare readonly send: (batch: readonly OutgoingMessage[]) => Promise<SendOutcome[]>;
  declare readonly limits: BatcherLimits;
  constructor(
    send: (batch: readonly OutgoingMessage[]) => Promise<SendOutcome[]>,
    limits: BatcherLimits,
  ) {
    this.send = send;
    this.limits = limits;
  }

  /** Queues one message; resolves with its id once sent, rejects with its error. */
  add(message: OutgoingMessage, size: number): Promise<string> {
    return new Promise((resolve) => this.#add(message, size, resolve, 0));
  }

  /** Queues several messages, each told to `waiter` with its index as slot. */
  addAll(encoded: readonly Encoded[], waiter: Slotted): void {
    for (let i = 0; i < encoded.length; i++)
      this.#add(encoded[i]!.message, encoded[i]!.size, waiter, i);
  }

  #add(message: OutgoingMessage, size: number, waiter: Waiter, slot: number): void {
    const key = message.destination ?? '';
    const limits = this.limits;
    // a queue in the map holds at least one message (made for one, removed when flushed)
    let q = this.#queues.get(key);
    if (q && q.bytes + size > limits.maxBytes) {
      this.#flush(key);
      q = undefined;
    }
    if (!q) {
      q = { messages: [], waiters: [], slots: [], bytes: 0, timer: undefined };
      this.#queues.set(key, q);
    }
    q.messages.push(message);
    q.waiters.push(waiter);
    q.slots.push(slot);
    q.bytes += size;
    if (q.messages.length >= limits.maxMessages || q.bytes >= limits.maxBytes) this.#flush(key);
    else
      q.timer ??=
        limits.lingerMs > 0
          ? setTimeout(() => this.#flush(key), limits.lingerMs)
          : soon(() => this.#flush(key));
  }

  #flush(key: string): void {
    const q = this.#queues.get(key);
    if (!q) return;
    this.#queues.delete(key);
    if (q.timer) cancel(q.timer);
    const { messages, waiters, slots } = q;
    // Only the ids are kept from here on: the messages are the transport's, and one that
    // encodes them into its SDK's batch at once lets them go while the batch is in flight.
    const ids = messages.map((m) => m.messageId);
    this.#inflight.enter();
    this.send(messages)
      .then(
        (outcomes) => {
          for (let i = 0; i < ids.length; i++)
            settle(
              waiters[i]!,
              slots[i]!,
              ids[i]!,
              outcomes[i] ?? {
                ok: false,
                error: new SendError('no outcome from the transport'),
              },
            );
        },
        // the publisher's send answers every failure as outcomes (its errors wrapped): this is
        // only what escaped it, passed on as it is
        (error: unknown) => {
          for (let i = 0; i < ids.length; i++)
            settle(waiters[i]!, slots[i]!, ids[i]!, { ok: false, error });
        },
      )
      .finally(() => this.#inflight.leave());
  }

  /** Sends everything queued now and waits for all sends to settle. */
  async flush(): Promise<void> {
    for (const key of [...this.#queues.keys()]) this.#flush(key);
    await this.#inflight.wait();
  }
}

function settle(waiter: Waiter, slot: number, messageId: string, o: SendOutcome): void {
  const id = o.ok ? (o.messageId ?? messageId) : undefined;
  if (typeof waiter !== 'function') waiter.settle(slot, id, o);
  else waiter(id ?? Promise.reject((o as { error: unknown }).error));
}
