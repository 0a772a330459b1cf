import { BROKER_OPTION_KEYS, Broker, type BrokerOptions } from './broker.ts';
import { CodecRegistry } from './codec.ts';
import { InvalidArgumentError, MessageTooLargeError, SendError } from './errors.ts';
import type {
  Capabilities,
  DeadLetterReason,
  DeadLetters,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Source,
  Transport,
} from './transport.ts';
import { SENT } from './transport.ts';
import { checkNonEmpty, checkOptionKeys, pick } from './util.ts';

const randomUUID = (): string => globalThis.crypto.randomUUID();

/** Settings of one in-memory queue, as a managed queue would have them. */
export interface MemoryQueueOptions {
  /** How long a received message stays invisible before it is redelivered. Default 30 000 ms. */
  visibilityTimeoutMs?: number;
  /** Receives after which the queue itself moves a message to its dead-letter queue (redrive). Default 10. */
  maxReceiveCount?: number;
  /** Largest message accepted (body + headers). Default 1 MiB, as SQS. */
  maxMessageBytes?: number;
}

interface Stored {
  readonly seq: number;
  readonly message: OutgoingMessage;
  readonly enqueuedAt: Date;
  availableAt: number;
  receiveCount: number;
  /** Current lock; a stale receipt cannot settle a redelivered message. */
  receipt?: string;
  timer?: NodeJS.Timeout;
  deadLetter?: DeadLetterReason;
}

/** One received message and its lock. */
export interface MemoryDelivery {
  readonly receipt: string;
  readonly message: OutgoingMessage;
  readonly receiveCount: number;
  readonly enqueuedAt: Date;
  /** Why it is in this (dead-letter) queue, when it is. */
  readonly deadLetter?: DeadLetterReason;
}

/** A message in a dead-letter queue, with why it is there. */
export interface DeadLetter {
  readonly messageId: string;
  readonly target: string;
  readonly body: unknown;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly correlationId?: string;
  readonly receiveCount: number;
  readonly reason: DeadLetterReason;
}

/**
 * An in-process queue with the semantics of a managed one: visibility timeout (lock), ack and
 * nack, redelivery with a receive count, redrive to a dead-letter queue after
 * `maxReceiveCount`, delay, ordering per group key (a group waits while one of its messages
 * is in flight, as SQS FIFO), and a size limit.
 *
 * @example
 * ```ts
 * const q = new MemoryHub().queue('jobs');
 * q.send(message);
 * const [d] = q.receive(1);
 * q.ack(d.receipt);
 * ```
 */
export class MemoryQueue {
  readonly name: string;
  readonly visibilityTimeoutMs: number;
  readonly maxReceiveCount: number;
  readonly maxMessageBytes: number;
  /** Where redriven and dead-lettered messages go; undefined for a dead-letter queue itself. */
  readonly deadLetterQueue: MemoryQueue | undefined;
  #seq = 0;
  /** Waiting messages in seq order; taken slots become holes, compacted now and then. */
  #ready: (Stored | undefined)[] = [];
  #head = 0;
  #size = 0;
  /** Earliest future availableAt among waiting messages (may be early, never late). */
  #nextDue = Number.POSITIVE_INFINITY;
  readonly #inflight = new Map<string, Stored>();
  readonly #groupsInFlight = new Set<string>();
  readonly #listeners = new Set<() => void>();
  #wake: NodeJS.Timeout | undefined;
  #wakeAt = Number.POSITIVE_INFINITY;

  constructor(name: string, options: MemoryQueueOptions = {}, deadLetterQueue?: MemoryQueue) {
    checkOptionKeys(
      options,
      ['visibilityTimeoutMs', 'maxReceiveCount', 'maxMessageBytes'],
      'MemoryQueue',
    );
    this.name = name;
    this.visibilityTimeoutMs = options.visibilityTimeoutMs ?? 30_000;
    this.maxReceiveCount = options.maxReceiveCount ?? 10;
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024;
    this.deadLetterQueue = deadLetterQueue;
  }

  /** Messages waiting (not in flight). */
  get depth(): number {
    return this.#size;
  }

  /** Messages received and not yet settled. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** Stores a message; throws MessageTooLargeError over the limit. */
  send(
    message: OutgoingMessage,
    size = message.body.byteLength,
    deadLetter?: DeadLetterReason,
    receiveCount = 0,
  ): void {
    if (size > this.maxMessageBytes)
      throw new MessageTooLargeError(size, this.maxMessageBytes, `memory queue ${this.name}`);
    const now = Date.now();
    const stored: Stored = {
      seq: this.#seq++,
      message,
      enqueuedAt: new Date(now),
      availableAt: now + (message.delaySeconds ?? 0) * 1000,
      receiveCount,
      deadLetter,
    };
    this.#ready.push(stored);
    this.#size++;
    this.#noteDue(stored.availableAt);
    this.#changed();
  }

  /**
   * Receives up to `max` visible messages, locking each for the visibility timeout. A message
   * already received `maxReceiveCount` times is moved to the dead-letter queue instead.
   */
  receive(max: number): MemoryDelivery[] {
    const now = Date.now();
    const out: MemoryDelivery[] = [];
    const groupsSeen = new Set<string>();
    for (let i = this.#head; i < this.#ready.length && out.length < max; i++) {
      const s = this.#ready[i];
      if (!s) continue;
      const group = s.message.groupKey;
      if (group !== undefined) {
        if (this.#groupsInFlight.has(group) || groupsSeen.has(group)) continue;
        groupsSeen.add(group); // only the oldest of a group may go, and only when visible
      }
      if (s.availableAt > now) continue;
      this.#ready[i] = undefined;
      this.#size--;
      if (this.deadLetterQueue && s.receiveCount >= this.maxReceiveCount) {
        this.deadLetterQueue.send(
          s.message,
          0,
          s.deadLetter ?? {
            code: 'max-deliveries',
            description: `received ${s.receiveCount} times (maxReceiveCount ${this.maxReceiveCount})`,
          },
          s.receiveCount,
        );
        continue;
      }
      s.receiveCount++;
      const receipt = randomUUID();
      s.receipt = receipt;
      s.timer = setTimeout(() => this.#expire(receipt), this.visibilityTimeoutMs);
      s.timer.unref?.();
      this.#inflight.set(receipt, s);
      if (group !== undefined) this.#groupsInFlight.add(group);
      out.push({
        receipt,
        message: s.message,
        receiveCount: s.receiveCount,
        enqueuedAt: s.enqueuedAt,
        deadLetter: s.deadLetter,
      });
    }
    this.#compact();
    return out;
  }

  /** Deletes a received message. False when the lock was lost (it expired and was redelivered). */
  ack(receipt: string): boolean {
    const s = this.#take(receipt);
    if (!s) return false;
    this.#changed();
    return true;
  }

  /** Makes a received message visible again after `delayMs`. */
  nack(receipt: string, delayMs = 0): boolean {
    const s = this.#take(receipt);
    if (!s) return false;
    s.availableAt = Date.now() + delayMs;
    this.#insertBySeq(s);
    this.#noteDue(s.availableAt);
    this.#changed();
    return true;
  }

  /** Moves a received message to the dead-letter queue with a reason. */
  deadLetter(receipt: string, reason: DeadLetterReason): boolean {
    const s = this.#take(receipt);
    if (!s) return false;
    if (!this.deadLetterQueue)
      throw new InvalidArgumentError(`queue ${this.name} has no dead-letter queue`);
    this.deadLetterQueue.send(s.message, 0, reason, s.receiveCount);
    this.#changed();
    return true;
  }

  /** Extends the lock of a received message by the visibility timeout from now. */
  extend(receipt: string, ms = this.visibilityTimeoutMs): boolean {
    const s = this.#inflight.get(receipt);
    if (!s) return false;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => this.#expire(receipt), ms);
    s.timer.unref?.();
    return true;
  }

  /** Calls `listener` whenever messages may have become receivable. Returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    this.#armWake();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#wake) {
        clearTimeout(this.#wake);
        this.#wake = undefined;
        this.#wakeAt = Number.POSITIVE_INFINITY;
      }
    };
  }

  /** Everything waiting, oldest first, with its dead-letter reason if any (does not lock). */
  peekAll(): { message: OutgoingMessage; receiveCount: number; reason?: DeadLetterReason }[] {
    return this.#waiting().map((s) => ({
      message: s.message,
      receiveCount: s.receiveCount,
      reason: s.deadLetter,
    }));
  }

  /** Drops everything and cancels timers. */
  purge(): void {
    for (const s of this.#inflight.values()) clearTimeout(s.timer);
    this.#inflight.clear();
    this.#ready = [];
    this.#head = 0;
    this.#size = 0;
    this.#nextDue = Number.POSITIVE_INFINITY;
    this.#groupsInFlight.clear();
    clearTimeout(this.#wake);
    this.#wake = undefined;
    this.#wakeAt = Number.POSITIVE_INFINITY;
  }

  #take(receipt: string): Stored | undefined {
    const s = this.#inflight.get(receipt);
    if (!s || s.receipt !== receipt) return undefined;
    this.#inflight.delete(receipt);
    clearTimeout(s.timer);
    s.receipt = undefined;
    if (s.message.groupKey !== undefined) this.#groupsInFlight.delete(s.message.groupKey);
    return s;
  }

  #expire(receipt: string): void {
    const s = this.#take(receipt);
    if (!s) return;
    s.availableAt = Date.now();
    this.#insertBySeq(s);
    this.#changed();
  }

  #insertBySeq(s: Stored): void {
    // Retried messages are old, so their place is near the head: scan from there.
    let j = this.#head;
    while (j < this.#ready.length && (this.#ready[j] === undefined || this.#ready[j]!.seq < s.seq))
      j++;
    if (j > 0 && this.#ready[j - 1] === undefined) {
      this.#ready[j - 1] = s;
      if (j - 1 < this.#head) this.#head = j - 1;
    } else {
      this.#ready.splice(j, 0, s);
    }
    this.#size++;
  }

  #waiting(): Stored[] {
    return this.#ready.slice(this.#head).filter((s): s is Stored => s !== undefined);
  }

  /** Moves the head past holes; drops them once they are most of the array. */
  #compact(): void {
    while (this.#head < this.#ready.length && this.#ready[this.#head] === undefined) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#head);
      this.#head = 0;
    }
  }

  #noteDue(at: number): void {
    if (at > Date.now() && at < this.#nextDue) this.#nextDue = at;
  }

  #changed(): void {
    for (const l of this.#listeners) l();
    this.#armWake();
  }

  /** Keeps one timer for the earliest delayed message, so listeners hear when it is due. */
  #armWake(): void {
    if (this.#nextDue === Number.POSITIVE_INFINITY || this.#listeners.size === 0) return;
    if (this.#wake && this.#wakeAt <= this.#nextDue) return;
    clearTimeout(this.#wake);
    this.#wakeAt = this.#nextDue;
    this.#wake = setTimeout(
      () => {
        this.#wake = undefined;
        this.#wakeAt = Number.POSITIVE_INFINITY;
        const now = Date.now();
        this.#nextDue = Number.POSITIVE_INFINITY;
        for (const w of this.#waiting()) this.#noteDue(w.availableAt > now ? w.availableAt : 0);
        this.#changed();
      },
      Math.max(0, this.#nextDue - Date.now()),
    );
  }
}

/**
 * A set of named in-memory queues brokers share, as they would share a cloud account. Each
 * queue `name` gets a dead-letter queue `name.dlq`. `MemoryHub.default` is shared process-wide.
 *
 * @example
 * ```ts
 * const hub = new MemoryHub();
 * const a = new MemoryBroker({ hub, queue: 'svc' });
 * const b = new MemoryBroker({ hub, queue: 'svc' }); // competing consumers of one queue
 * ```
 */
export class MemoryHub {
  /** The process-wide hub brokers use when given none. */
  static readonly default: MemoryHub = new MemoryHub();
  readonly #queues = new Map<string, MemoryQueue>();
  readonly queueOptions: MemoryQueueOptions;

  constructor(queueOptions: MemoryQueueOptions = {}) {
    this.queueOptions = queueOptions;
  }

  /** Gets or creates a queue (and its `.dlq`). */
  queue(name: string, options: MemoryQueueOptions = this.queueOptions): MemoryQueue {
    let q = this.#queues.get(name);
    if (!q) {
      const dlqName = `${name}.dlq`;
      let dlq = this.#queues.get(dlqName);
      if (!dlq) {
        dlq = new MemoryQueue(dlqName, { maxMessageBytes: Number.MAX_SAFE_INTEGER });
        this.#queues.set(dlqName, dlq);
      }
      q = new MemoryQueue(name, options, dlq);
      this.#queues.set(name, q);
    }
    return q;
  }

  /** True when the queue exists. */
  has(name: string): boolean {
    return this.#queues.has(name);
  }

  /** Deletes a queue and its dead-letter queue. */
  delete(name: string): void {
    for (const n of [name, `${name}.dlq`]) {
      this.#queues.get(n)?.purge();
      this.#queues.delete(n);
    }
  }
}

/**
 * Options of {@link MemoryBroker}: those of every broker plus the queue it uses.
 */
export interface MemoryBrokerOptions extends BrokerOptions {
  /** The hub of queues. Default: `MemoryHub.default`. */
  hub?: MemoryHub;
  /**
   * Queue this broker consumes from and publishes to. Default: a queue of its own
   * (`cloudmom-<uuid>`), so two brokers compete for one queue only when given the same name.
   */
  queue?: string;
  /** Queue `publish` sends to, when other than `queue`. */
  publishTo?: string;
  /** Settings of queues this broker creates. */
  queueOptions?: MemoryQueueOptions;
}

const MEMORY_KEYS = ['hub', 'queue', 'publishTo', 'queueOptions'] as const;

/**
 * The embedded broker: the full semantics of a managed queue, in process. What `npm start`
 * runs on and a test double for any cloud broker.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from 'cloudmom';
 * const broker = new MemoryBroker({ maxDeliveries: 3 });
 * broker.add('example', (properties, body) => 'Hi there too');
 * await broker.start();
 * const reply = await broker.request('Hello World!', 'example');
 * await broker.stop();
 * ```
 */
export class MemoryBroker extends Broker {
  readonly #transport: MemoryTransport;

  constructor(options: MemoryBrokerOptions = {}) {
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...MEMORY_KEYS], 'MemoryBroker');
    const [own, core] = pick(options, MEMORY_KEYS);
    const transport = new MemoryTransport(own, new CodecRegistry(core.codecs));
    super(transport, core);
    this.#transport = transport;
  }

  /** The queue this broker consumes from. */
  get queue(): MemoryQueue {
    return this.#transport.inbound;
  }

  /** The messages in this broker's dead-letter queue, decoded, with their reasons. */
  deadLetters(): DeadLetter[] {
    return this.#transport.deadLetters();
  }
}

class MemoryTransport implements Transport {
  readonly hub: MemoryHub;
  readonly inbound: MemoryQueue;
  readonly outbound: MemoryQueue;
  readonly client: MemoryHub;
  readonly capabilities: Capabilities;
  readonly #codecs: CodecRegistry;
  readonly #queueOptions: MemoryQueueOptions | undefined;
  #replyQueue: string | undefined;
  readonly #ownQueue: boolean;
  #closed = false;

  constructor(
    options: Pick<MemoryBrokerOptions, (typeof MEMORY_KEYS)[number]>,
    codecs: CodecRegistry,
  ) {
    this.hub = options.hub ?? MemoryHub.default;
    this.client = this.hub;
    this.#queueOptions = options.queueOptions;
    // Without a name each broker has a queue of its own: two brokers share one only when told.
    this.#ownQueue = options.queue === undefined;
    const name = options.queue ?? `cloudmom-${randomUUID()}`;
    checkNonEmpty(name, 'MemoryBroker: queue');
    this.inbound = this.hub.queue(name, options.queueOptions);
    this.outbound = options.publishTo
      ? this.hub.queue(options.publishTo, options.queueOptions)
      : this.inbound;
    this.#codecs = codecs;
    this.capabilities = {
      name: 'memory',
      maxMessageBytes: this.outbound.maxMessageBytes,
      maxBatchMessages: 100,
      maxBatchBytes: 16 * 1024 * 1024,
      batchLingerMs: 0,
      ordering: true,
      maxDelaySeconds: 900,
      nackDelay: true,
      deadLetter: 'copy',
      request: true,
      defaultReplyAllowList: ['reply.*'],
    };
  }

  isRetryable(): boolean {
    return false;
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    return batch.map((m) => {
      if (this.#closed) return { ok: false, error: new SendError('memory transport is closed') };
      try {
        const q =
          m.destination === undefined
            ? this.outbound
            : this.hub.queue(m.destination, this.#queueOptions);
        const dl = m.deadLetter;
        if (dl) q.send(m, 0, { code: dl.code, description: dl.description }, dl.deliveryCount);
        else q.send(m, m.body.byteLength);
        return SENT;
      } catch (error) {
        return { ok: false, error };
      }
    });
  }

  async open(): Promise<Source[]> {
    return [new MemorySource(this.inbound)];
  }

  deadLetterAddress(): string {
    return this.inbound.deadLetterQueue!.name;
  }

  async openDeadLetters(): Promise<DeadLetters> {
    const dlq = this.inbound.deadLetterQueue!;
    return {
      source: new MemorySource(dlq, false),
      origin: this.inbound.name,
      reason: (m) => (m.raw as MemoryDelivery).deadLetter,
      count: async () => dlq.depth,
      close: async () => {},
    };
  }

  async openReplyAddress(): Promise<{ address: string; source: Source }> {
    const name = `reply.${randomUUID()}`;
    this.#replyQueue = name;
    return { address: name, source: new MemorySource(this.hub.queue(name, this.#queueOptions)) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#replyQueue) this.hub.delete(this.#replyQueue);
    if (this.#ownQueue && this.inbound.depth === 0 && this.inbound.deadLetterQueue?.depth === 0)
      this.hub.delete(this.inbound.name);
  }

  deadLetters(): DeadLetter[] {
    return this.inbound.deadLetterQueue!.peekAll().map(({ message: m, receiveCount, reason }) => {
      let body: unknown;
      try {
        body = this.#codecs.decodeMessage(m);
      } catch {
        body = m.body;
      }
      return {
        messageId: m.messageId,
        target: m.target,
        body,
        contentType: m.contentType,
        headers: m.headers,
        correlationId: m.correlationId,
        receiveCount,
        reason: reason ?? { code: 'max-deliveries', description: 'redriven by the queue' },
      };
    });
  }
}

/** A memory queue as a source: pull, waiting for a change while empty. */
class MemorySource implements Source {
  readonly name: string;
  readonly maxReceive = 100;
  readonly maxAckBatch = 100;
  readonly extendEveryMs: number;
  readonly #queue: MemoryQueue;
  /** False: `receive` resolves `[]` at once when nothing is there (a dead-letter reader). */
  readonly #wait: boolean;

  constructor(queue: MemoryQueue, wait = true) {
    this.#queue = queue;
    this.#wait = wait;
    this.name = queue.name;
    this.extendEveryMs = Math.max(50, Math.floor(queue.visibilityTimeoutMs / 2));
  }

  async receive(max: number, signal: AbortSignal): Promise<IncomingMessage[]> {
    for (;;) {
      const got = this.#queue.receive(max);
      if (got.length > 0) return got.map(toIncoming);
      if (signal.aborted || !this.#wait) return [];
      await new Promise<void>((resolve) => {
        const done = () => {
          off();
          signal.removeEventListener('abort', done);
          resolve();
        };
        const off = this.#queue.onChange(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    for (const id of ackIds) this.#queue.ack(id as string);
  }

  async nack(ackId: unknown, delayMs: number): Promise<void> {
    this.#queue.nack(ackId as string, delayMs);
  }

  async extend(ackIds: readonly unknown[]): Promise<void> {
    for (const id of ackIds) this.#queue.extend(id as string);
  }

  async close(): Promise<void> {}
}

function toIncoming(d: MemoryDelivery): IncomingMessage {
  const m = d.message;
  return {
    body: m.body,
    target: m.target,
    messageId: m.messageId,
    contentType: m.contentType,
    headers: m.headers,
    correlationId: m.correlationId,
    replyTo: m.replyTo,
    deliveryCount: d.receiveCount,
    publishedAt: d.enqueuedAt,
    groupKey: m.groupKey,
    ackId: d.receipt,
    raw: d,
  };
}
