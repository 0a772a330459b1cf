import { SendError } from './errors.ts';
import type { OutgoingMessage, SendOutcome } from './transport.ts';
import { cancel, Idle, soon, type Timer } from './util.ts';

interface Pending {
  readonly message: OutgoingMessage;
  readonly size: number;
  readonly resolve: (id: string) => void;
  readonly reject: (err: Error) => void;
}

export interface BatcherLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly lingerMs: number;
}

/**
 * Collects publishes per destination into batches of at most `maxMessages` / `maxBytes`,
 * flushed when full or after `lingerMs`, and resolves each caller with its own outcome.
 */
export class Batcher {
  readonly #queues = new Map<string, { items: Pending[]; bytes: number; timer?: Timer }>();
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

  add(message: OutgoingMessage, size: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const key = message.destination ?? '';
      // a queue in the map holds at least one message (made for one, removed when flushed)
      let q = this.#queues.get(key);
      if (q && q.bytes + size > this.limits.maxBytes) {
        this.#flush(key);
        q = undefined;
      }
      if (!q) {
        q = { items: [], bytes: 0 };
        this.#queues.set(key, q);
      }
      q.items.push({ message, size, resolve, reject });
      q.bytes += size;
      if (q.items.length >= this.limits.maxMessages || q.bytes >= this.limits.maxBytes) {
        this.#flush(key);
      } else if (!q.timer) {
        q.timer =
          this.limits.lingerMs > 0
            ? setTimeout(() => this.#flush(key), this.limits.lingerMs)
            : soon(() => this.#flush(key));
      }
    });
  }

  #flush(key: string): void {
    const q = this.#queues.get(key);
    if (!q) return;
    this.#queues.delete(key);
    if (q.timer) cancel(q.timer);
    const items = q.items;
    if (items.length === 0) return;
    this.#inflight.enter();
    this.send(items.map((p) => p.message))
      .then(
        (outcomes) => {
          items.forEach((p, i) => {
            const o = outcomes[i];
            if (!o) p.reject(new SendError('the transport returned no outcome for this message'));
            else if (o.ok) p.resolve(o.messageId);
            else p.reject(o.error as Error);
          });
        },
        // the publisher's send answers every failure as outcomes (its errors wrapped): this is
        // only what escaped it, passed on as it is
        (err: Error) => {
          for (const p of items) p.reject(err);
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
