/**
 * The broker's long-running side, which {@link Broker} attaches to the core: `start()`'s
 * consumers of the transport's sources (the receive loop, receiver.ts) and `request()`'s
 * pending table and reply address (requests.ts). Function-side brokers leave it out.
 */
import type { CoreParts, LongRunning } from './broker-core.ts';
import type { Body } from './codec.ts';
import { RequestAbortedError } from './errors.ts';
import { describeError } from './log.ts';
import type { Reply, RequestOptions } from './options.ts';
import { type Decide, withSlot } from './per-message.ts';
import { randomUUID } from './publisher.ts';
import { Consumer } from './receiver.ts';
import { Requests } from './requests.ts';
import { ACK } from './router.ts';
import type { IncomingMessage, Source } from './transport.ts';
import { checkNumber, Idle, Semaphore } from './util.ts';

/** Most messages in hand on this instance's reply address. */
const REPLY_BUDGET = 100;

/** Makes the long-running side of a broker's core. */
export function longRunning(core: CoreParts): LongRunning {
  return new LongRunningParts(core);
}

class LongRunningParts implements LongRunning {
  readonly #core: CoreParts;
  readonly #requests: Requests;
  readonly #consumers: Consumer[] = [];
  readonly #replySlots = new Semaphore(REPLY_BUDGET);
  readonly #replyInflight = new Idle();
  readonly #decideReply: Decide;
  #replyConsumer: Consumer | undefined;
  #starting: Promise<void> | undefined;

  constructor(core: CoreParts) {
    this.#core = core;
    this.#requests = new Requests(core.transport, core.codecs, (s) => this.#consumeReplies(s));
    const handleReply = (m: IncomingMessage) => core.router.handle(m, 'reply');
    this.#decideReply = (m) => {
      if (this.#requests.deliver(m)) {
        core.stats.acked++;
        return ACK;
      }
      return withSlot(this.#replySlots, handleReply, m);
    };
  }

  start(): Promise<void> {
    if (!this.#starting) {
      const starting = this.#open();
      this.#starting = starting;
      starting.catch((err: unknown) => {
        if (this.#starting === starting) this.#starting = undefined;
        this.#core.logger.error('starting the broker failed; start() may be called again', {
          transport: this.#core.transport.capabilities.name,
          error: describeError(err),
        });
      });
    }
    return this.#starting;
  }

  async #open(): Promise<void> {
    const core = this.#core;
    const sources = (await core.transport.open?.()) ?? [];
    if (core.stopped()) {
      await Promise.allSettled(sources.map((s) => s.close()));
      return;
    }
    for (const source of sources) {
      const c = new Consumer(source, core.concurrency, core.decide, core, core.inflight);
      this.#consumers.push(c);
      c.start();
    }
    core.logger.info('broker started', {
      transport: core.transport.capabilities.name,
      sources: sources.map((s) => s.name),
      targets: core.router.targets(),
    });
  }

  async request(body: Body, target: string, options: RequestOptions): Promise<Reply> {
    const core = this.#core;
    const { timeoutMs = core.requestTimeoutMs, signal, ...publishOptions } = options;
    checkNumber(timeoutMs, 'timeoutMs');
    if (signal?.aborted)
      throw new RequestAbortedError('request aborted before it was sent', { cause: signal.reason });
    const replyTo = await this.#requests.address();
    const correlationId = randomUUID();
    const encoded = core.publisher.encode(body, target, {
      ...publishOptions,
      correlationId,
      replyTo,
    });
    return this.#requests.wait(correlationId, target, timeoutMs, signal, () =>
      core.publisher.enqueue(encoded),
    );
  }

  #consumeReplies(source: Source): void {
    const c = new Consumer(
      source,
      REPLY_BUDGET,
      this.#decideReply,
      this.#core,
      this.#replyInflight,
    );
    this.#replyConsumer = c;
    c.start();
  }

  async stopConsumers(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    await Promise.all(this.#consumers.map((c) => c.stop()));
  }

  async stopRequests(): Promise<void> {
    this.#requests.abortAll();
    await this.#replyConsumer?.stop();
    await this.#replyInflight.wait();
  }
}
