/**
 * `request()`: the table of pending requests, their timeouts and signals, and this instance's
 * reply address (opened once, on first use, through the transport).
 */
import type { CodecRegistry } from './codec.ts';
import { InvalidArgumentError, RequestAbortedError, RequestTimeoutError } from './errors.ts';
import type { Reply } from './options.ts';
import { MessageProperties } from './router.ts';
import type { IncomingMessage, Source, Transport } from './transport.ts';

interface Pending {
  resolve(reply: Reply): void;
  reject(err: Error): void;
}

export class Requests {
  readonly #pending = new Map<string, Pending>();
  readonly #transport: Transport;
  readonly #codecs: CodecRegistry;
  readonly #onSource: (source: Source) => void;
  #address: Promise<string> | undefined;

  /** `onSource` is given the reply address's source, for the broker to consume. */
  constructor(transport: Transport, codecs: CodecRegistry, onSource: (source: Source) => void) {
    this.#transport = transport;
    this.#codecs = codecs;
    this.#onSource = onSource;
  }

  /** This instance's reply address; opened on first use (a failed open is tried again next time). */
  address(): Promise<string> {
    if (!this.#address) {
      const open = this.#transport.openReplyAddress;
      if (!open) {
        return Promise.reject(
          new InvalidArgumentError(
            `request() is not supported by the ${this.#transport.capabilities.name} transport`,
          ),
        );
      }
      const opened = open.call(this.#transport).then(({ address, source }) => {
        this.#onSource(source);
        return address;
      });
      this.#address = opened;
      opened.catch(() => {
        if (this.#address === opened) this.#address = undefined;
      });
    }
    return this.#address;
  }

  /** Waits for the reply correlated by `correlationId`; `send` publishes the request. */
  wait(
    correlationId: string,
    target: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    send: () => Promise<unknown>,
  ): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(correlationId);
      };
      const timer = setTimeout(() => {
        done();
        reject(new RequestTimeoutError(correlationId, timeoutMs, target));
      }, timeoutMs);
      const onAbort = () => {
        done();
        reject(new RequestAbortedError('request aborted', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(correlationId, {
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      send().catch((err: unknown) => {
        done();
        reject(err);
      });
    });
  }

  /**
   * Hands a message that arrived on the reply address to its pending request; false when no
   * request waits for it (it then goes to the target "reply").
   */
  deliver(message: IncomingMessage): boolean {
    const id = message.correlationId;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending) return false;
    try {
      const body = this.#codecs.decodeMessage(message);
      pending.resolve({ properties: new MessageProperties(message, 'reply'), body });
    } catch (err) {
      pending.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return true;
  }

  /** Fails every pending request (the broker stops). */
  abortAll(): void {
    for (const p of [...this.#pending.values()])
      p.reject(new RequestAbortedError('the broker stopped before a reply came'));
  }
}
