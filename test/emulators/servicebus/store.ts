/**
 * The Service Bus peer's state, free of AMQP links: queues, topics, subscriptions with
 * rules, dead-letter sub-queues, sequence numbers, peek-locks with expiry, delivery counts,
 * deferral and scheduled messages. `peer.ts` puts the AMQP protocol in front of it.
 */
import { randomBytes } from 'node:crypto';
import type {
  AutoCreateRule,
  CorrelationFilter,
  EntityOptions,
  PeerConfig,
  RuleFilterConfig,
} from './config.ts';

/** A decoded AMQP message as rhea represents it (properties flattened, sections as fields). */
export type AmqpMessage = Record<string, any>;

/** An error the peer reports to the client with an AMQP error condition. */
export class PeerError extends Error {
  readonly condition: string;
  readonly status: number;
  constructor(condition: string, description: string, status = 400) {
    super(description);
    this.condition = condition;
    this.status = status;
  }
}

const MINUTE = 60_000;
const DEFAULTS: Required<EntityOptions> = {
  lockDurationMs: MINUTE,
  maxDeliveryCount: 10,
  requiresSession: false,
};

/** A message in a store, with broker-side state. */
export interface Stored {
  readonly seq: number;
  readonly enqueuedAt: number;
  message: AmqpMessage;
  /** How many times it was handed to a receiver (the AMQP header carries this minus one). */
  deliveries: number;
  /** The lock token (UUID string) while locked. */
  lockToken?: string;
  lockedUntil?: number;
  lockTimer?: NodeJS.Timeout;
  state: 'active' | 'deferred';
}

/** Something that takes messages from a store: one receiver link, as `peer.ts` implements it. */
export interface Consumer {
  readonly receiveAndDelete: boolean;
  /** The session this consumer holds (session receivers only). */
  readonly sessionId?: string;
  /** Called when the session lock expired: the consumer must stop (its link is closed). */
  sessionLost?(): void;
  /** How many more messages it can take now. */
  credit(): number;
  deliver(stored: Stored, lockToken: string): void;
}

export type RuleFilter =
  | { kind: 'true' }
  | { kind: 'false' }
  | { kind: 'correlation'; filter: CorrelationFilter };

/** A queue, a subscription or a dead-letter sub-queue: messages with locks. */
export class Store {
  readonly path: string;
  readonly options: Required<EntityOptions>;
  /** The `$deadletterqueue` sub-queue (none for a dead-letter queue itself). */
  readonly deadLetter: Store | undefined;
  /** Filter rules, for subscriptions only. */
  readonly rules = new Map<string, RuleFilter>();
  private readonly available: Stored[] = [];
  private readonly locked = new Map<string, Stored>();
  private readonly deferred = new Map<number, Stored>();
  private readonly consumers: Consumer[] = [];
  private next = 0;
  /** Session locks and states by session id (session-enabled entities). */
  private readonly sessions = new Map<string, SessionEntry>();
  /** Session receivers waiting for any session with messages. */
  private readonly waiting: ((sessionId: string) => boolean)[] = [];

  constructor(path: string, options: EntityOptions, isDeadLetter = false) {
    this.path = path;
    this.options = { ...DEFAULTS, ...options };
    this.deadLetter = isDeadLetter
      ? undefined
      : new Store(
          `${path}/$deadletterqueue`,
          { lockDurationMs: this.options.lockDurationMs, requiresSession: false },
          true,
        );
  }

  get size(): number {
    return this.available.length + this.locked.size + this.deferred.size;
  }

  add(stored: Stored): void {
    insertBySeq(this.available, stored);
    if (this.options.requiresSession) this.offerSessions();
    this.pump();
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.pump();
  }

  removeConsumer(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
  }

  /**
   * Hands available messages to consumers with credit, round robin; a session receiver gets
   * only its session's messages, in sequence order.
   */
  pump(): void {
    while (this.available.length > 0 && this.consumers.length > 0) {
      let consumer: Consumer | undefined;
      let index = -1;
      for (let k = 0; k < this.consumers.length; k++) {
        const c = this.consumers[(this.next + k) % this.consumers.length]!;
        if (c.credit() <= 0) continue;
        index =
          c.sessionId === undefined
            ? 0
            : this.available.findIndex((m) => sessionOf(m) === c.sessionId);
        if (index < 0) continue;
        consumer = c;
        this.next = (this.next + k + 1) % this.consumers.length;
        break;
      }
      if (!consumer) return;
      const stored = this.available.splice(index, 1)[0]!;
      if (expired(stored)) continue;
      stored.deliveries++;
      const token = newLockToken();
      if (!consumer.receiveAndDelete) this.lock(stored, token);
      consumer.deliver(stored, token);
    }
  }

  private lock(stored: Stored, token: string): void {
    stored.lockToken = token;
    this.locked.set(token, stored);
    const session = this.sessions.get(sessionOf(stored) ?? '')?.lock;
    if (this.options.requiresSession && session) {
      // A session's messages are locked as long as the session is.
      stored.lockedUntil = session.until;
      return;
    }
    stored.lockedUntil = Date.now() + this.options.lockDurationMs;
    this.armLockTimer(stored);
  }

  /**
   * Locks a session for a receiver: the one named, or the first (by sequence number) unlocked
   * session with messages. Returns its id and lock expiry, or undefined when none is free.
   */
  acquireSession(
    requested: string | undefined,
    owner: Consumer,
  ): { sessionId: string; until: number } | undefined {
    let id = requested;
    if (id === undefined) {
      id = this.available.map(sessionOf).find((s) => s !== undefined && !this.sessionLocked(s));
      if (id === undefined) return undefined;
    } else if (this.sessionLocked(id)) {
      throw new PeerError(
        'com.microsoft:session-cannot-be-locked',
        `The requested session '${id}' cannot be accepted. It may be locked by another receiver.`,
        410,
      );
    }
    const entry = this.session(id);
    const until = Date.now() + this.options.lockDurationMs;
    entry.lock = { owner, until, timer: this.sessionTimer(id, until) };
    return { sessionId: id, until };
  }

  /** Waits for an unlocked session with messages; `take` returns false to stop waiting. */
  waitForSession(take: (sessionId: string) => boolean): () => void {
    this.waiting.push(take);
    this.offerSessions();
    return () => {
      const i = this.waiting.indexOf(take);
      if (i >= 0) this.waiting.splice(i, 1);
    };
  }

  private offerSessions(): void {
    while (this.waiting.length > 0) {
      const id = this.available
        .map(sessionOf)
        .find((s) => s !== undefined && !this.sessionLocked(s));
      if (id === undefined) return;
      const take = this.waiting.shift()!;
      take(id);
    }
  }

  private sessionLocked(id: string): boolean {
    const lock = this.sessions.get(id)?.lock;
    return lock !== undefined && lock.until > Date.now();
  }

  private session(id: string): SessionEntry {
    let entry = this.sessions.get(id);
    if (!entry) {
      entry = {};
      this.sessions.set(id, entry);
    }
    return entry;
  }

  private sessionTimer(id: string, until: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const owner = this.sessions.get(id)?.lock?.owner;
      this.releaseSession(id);
      owner?.sessionLost?.();
    }, until - Date.now());
    timer.unref();
    return timer;
  }

  /** Renews a session lock held by `owner`; returns the new expiry, or undefined if lost. */
  renewSession(id: string): number | undefined {
    const lock = this.sessions.get(id)?.lock;
    if (!lock) return undefined;
    clearTimeout(lock.timer);
    lock.until = Date.now() + this.options.lockDurationMs;
    lock.timer = this.sessionTimer(id, lock.until);
    for (const stored of this.locked.values()) {
      if (sessionOf(stored) === id) stored.lockedUntil = lock.until;
    }
    return lock.until;
  }

  /** Ends a session lock: its locked messages go back (as after an abandon). */
  releaseSession(id: string): void {
    const entry = this.sessions.get(id);
    if (!entry?.lock) return;
    clearTimeout(entry.lock.timer);
    entry.lock = undefined;
    for (const [token, stored] of [...this.locked]) {
      if (sessionOf(stored) === id) this.release(token, undefined);
    }
    this.offerSessions();
  }

  getSessionState(id: string): Buffer | undefined {
    return this.sessions.get(id)?.state;
  }

  setSessionState(id: string, state: Buffer | undefined): void {
    this.session(id).state = state;
  }

  private armLockTimer(stored: Stored): void {
    clearTimeout(stored.lockTimer);
    const token = stored.lockToken!;
    stored.lockTimer = setTimeout(
      () => {
        // Lock expiry counts as a failed delivery, like an abandon.
        if (this.locked.get(token) === stored) this.release(token, undefined);
      },
      Math.max(0, stored.lockedUntil! - Date.now()),
    );
    stored.lockTimer.unref();
  }

  private unlock(token: string): Stored | undefined {
    const stored = this.locked.get(token);
    if (!stored) return undefined;
    this.locked.delete(token);
    clearTimeout(stored.lockTimer);
    stored.lockToken = undefined;
    stored.lockedUntil = undefined;
    stored.lockTimer = undefined;
    return stored;
  }

  /** True while `token` holds a lock. */
  isLocked(token: string): boolean {
    return this.locked.has(token);
  }

  complete(token: string): boolean {
    return this.unlock(token) !== undefined;
  }

  /** Abandon (or lock expiry): back to the queue, or to the DLQ after max deliveries. */
  release(token: string, propertiesToModify: Record<string, unknown> | undefined): boolean {
    const stored = this.unlock(token);
    if (!stored) return false;
    modify(stored, propertiesToModify);
    if (stored.deliveries >= this.options.maxDeliveryCount) {
      this.moveToDeadLetter(
        stored,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${this.options.maxDeliveryCount} delivery attempts.`,
      );
    } else {
      this.add(stored);
    }
    return true;
  }

  defer(token: string, propertiesToModify: Record<string, unknown> | undefined): boolean {
    const stored = this.unlock(token);
    if (!stored) return false;
    modify(stored, propertiesToModify);
    stored.state = 'deferred';
    this.deferred.set(stored.seq, stored);
    return true;
  }

  deadLetterLocked(
    token: string,
    reason: string | undefined,
    description: string | undefined,
    propertiesToModify?: Record<string, unknown>,
  ): boolean {
    const stored = this.unlock(token);
    if (!stored) return false;
    modify(stored, propertiesToModify);
    this.moveToDeadLetter(stored, reason, description);
    return true;
  }

  private moveToDeadLetter(stored: Stored, reason?: string, description?: string): void {
    if (!this.deadLetter) return; // a dead-letter queue does not dead-letter again: dropped
    const appProps = { ...stored.message.application_properties };
    if (reason !== undefined) appProps.DeadLetterReason = reason;
    if (description !== undefined) appProps.DeadLetterErrorDescription = description;
    const message = {
      ...stored.message,
      application_properties: appProps,
      message_annotations: {
        ...stored.message.message_annotations,
        'x-opt-deadletter-source': this.path,
      },
    };
    this.deadLetter.add({ ...stored, message, state: 'active' });
  }

  /** Renews a lock; returns the new expiry or undefined when the lock is lost. */
  renew(token: string): number | undefined {
    const stored = this.locked.get(token);
    if (!stored) return undefined;
    if (this.options.requiresSession) return stored.lockedUntil; // the session's lock
    stored.lockedUntil = Date.now() + this.options.lockDurationMs;
    this.armLockTimer(stored);
    return stored.lockedUntil;
  }

  /** Locks deferred messages by sequence number (`receiveDeferredMessages`). */
  takeDeferred(seqs: number[], receiveAndDelete: boolean): { stored: Stored; token: string }[] {
    const out: { stored: Stored; token: string }[] = [];
    for (const seq of seqs) {
      const stored = this.deferred.get(seq);
      if (!stored)
        throw new PeerError('com.microsoft:message-not-found', `no deferred message ${seq}`, 404);
      this.deferred.delete(seq);
      stored.deliveries++;
      const token = newLockToken();
      if (!receiveAndDelete) this.lock(stored, token);
      out.push({ stored, token });
    }
    return out;
  }

  /** Messages from `fromSeq` on, locked or not, for peek. */
  peek(fromSeq: number, count: number): Stored[] {
    return [...this.available, ...this.locked.values(), ...this.deferred.values()]
      .filter((s) => s.seq >= fromSeq)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, count);
  }

  /** Drops timers (at shutdown). */
  close(): void {
    for (const stored of this.locked.values()) clearTimeout(stored.lockTimer);
    for (const entry of this.sessions.values()) clearTimeout(entry.lock?.timer);
    this.deadLetter?.close();
  }
}

interface SessionEntry {
  lock?: { owner: Consumer; until: number; timer: NodeJS.Timeout };
  state?: Buffer;
}

/** A message's session id (AMQP `group_id`). */
export function sessionOf(stored: Stored): string | undefined {
  const id = stored.message.group_id;
  return id === undefined || id === null ? undefined : String(id);
}

export interface Topic {
  readonly name: string;
  readonly subscriptions: Map<string, Store>;
  /** Created on demand (may still turn out to be a topic when a subscription is named). */
  readonly auto: boolean;
}

export type Resolved =
  | { kind: 'queue'; store: Store }
  | { kind: 'topic'; topic: Topic }
  | { kind: 'subscription'; store: Store; topic: Topic }
  | { kind: 'deadletter'; store: Store };

interface Scheduled {
  readonly seq: number;
  readonly address: string;
  readonly message: AmqpMessage;
  readonly timer: NodeJS.Timeout;
}

/** All entities of one peer. Entity names are case-insensitive, as in Service Bus. */
export class Namespace {
  private readonly queues = new Map<string, Store & { auto?: boolean }>();
  private readonly topics = new Map<string, Topic>();
  private readonly scheduled = new Map<number, Scheduled>();
  private readonly config: PeerConfig;
  private seq = 0;

  constructor(config: PeerConfig) {
    this.config = config;
    for (const [name, options] of Object.entries(config.queues ?? {})) {
      this.queues.set(key(name), new Store(name, options));
    }
    for (const [name, topicConfig] of Object.entries(config.topics ?? {})) {
      const topic: Topic = { name, subscriptions: new Map(), auto: false };
      this.topics.set(key(name), topic);
      for (const [sub, subConfig] of Object.entries(topicConfig.subscriptions ?? {})) {
        const store = new Store(`${name}/Subscriptions/${sub}`, subConfig);
        for (const [rule, filter] of Object.entries(subConfig.rules ?? { $Default: true })) {
          store.rules.set(rule, ruleFilter(filter));
        }
        topic.subscriptions.set(key(sub), store);
      }
    }
  }

  /** Finds the entity an address names, creating it when allowed (see `autoCreate`). */
  resolve(rawAddress: string): Resolved {
    const address = entityPath(rawAddress);
    const parts = address.split('/');
    const dlq = parts.at(-1)?.toLowerCase() === '$deadletterqueue';
    if (dlq) parts.pop();
    let resolved: Resolved;
    if (parts.length === 3 && parts[1]!.toLowerCase() === 'subscriptions') {
      const topic = this.topic(parts[0]!, true);
      let store = topic.subscriptions.get(key(parts[2]!));
      if (!store) {
        this.mayCreate(address);
        store = new Store(`${topic.name}/Subscriptions/${parts[2]}`, this.optionsFor(address));
        store.rules.set('$Default', { kind: 'true' });
        topic.subscriptions.set(key(parts[2]!), store);
      }
      resolved = { kind: 'subscription', store, topic };
    } else if (parts.length === 1 && parts[0]) {
      const topic = this.topics.get(key(parts[0]));
      if (topic) resolved = { kind: 'topic', topic };
      else resolved = { kind: 'queue', store: this.queue(parts[0]) };
    } else {
      throw new PeerError('amqp:not-found', `the peer has no entity at '${address}'`, 404);
    }
    if (!dlq) return resolved;
    if (resolved.kind === 'topic') {
      throw new PeerError('amqp:not-found', `a topic has no dead-letter queue: '${address}'`, 404);
    }
    return { kind: 'deadletter', store: (resolved as { store: Store }).store.deadLetter! };
  }

  private queue(name: string): Store {
    let store = this.queues.get(key(name));
    if (!store) {
      this.mayCreate(name);
      store = Object.assign(new Store(name, this.optionsFor(name)), { auto: true });
      this.queues.set(key(name), store);
    }
    return store;
  }

  private topic(name: string, create: boolean): Topic {
    let topic = this.topics.get(key(name));
    if (topic || !create) return topic!;
    const asQueue = this.queues.get(key(name));
    if (asQueue && !asQueue.auto) {
      throw new PeerError('amqp:not-found', `'${name}' is a queue, not a topic`, 404);
    }
    this.mayCreate(name);
    // A name first used for sending was created as a queue; naming a subscription under it
    // makes it a topic. What was sent before is dropped, as Azure drops messages sent to a
    // topic that has no subscription.
    asQueue?.close();
    this.queues.delete(key(name));
    topic = { name, subscriptions: new Map(), auto: true };
    this.topics.set(key(name), topic);
    return topic;
  }

  private mayCreate(path: string): void {
    if (this.config.autoCreate === false || this.ruleFor(path)?.create === false) {
      // Azure's wording: the client maps it to MessagingEntityNotFound by this text.
      throw new PeerError(
        'amqp:not-found',
        `The messaging entity '${path}' could not be found (the peer does not create it).`,
        404,
      );
    }
  }

  private ruleFor(path: string): AutoCreateRule | undefined {
    let best: AutoCreateRule | undefined;
    for (const rule of this.config.autoCreateRules ?? []) {
      if (path.startsWith(rule.prefix) && rule.prefix.length > (best?.prefix.length ?? -1))
        best = rule;
    }
    return best;
  }

  private optionsFor(path: string): EntityOptions {
    const { prefix: _, create: __, ...options } = this.ruleFor(path) ?? { prefix: '' };
    return options;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /** Accepts a message sent to a queue or topic (scheduled ones are held until due). */
  send(address: string, message: AmqpMessage): number {
    const target = this.resolve(address);
    if (target.kind !== 'queue' && target.kind !== 'topic') {
      throw new PeerError('amqp:not-allowed', `cannot send to '${entityPath(address)}'`, 403);
    }
    if (
      target.kind === 'queue' &&
      target.store.options.requiresSession &&
      (message.group_id ?? null) === null
    ) {
      throw new PeerError(
        'amqp:not-allowed',
        `'${target.store.path}' requires sessions: a message sent to it needs a sessionId`,
      );
    }
    const seq = this.nextSeq();
    const at = scheduledTime(message);
    if (at !== undefined && at > Date.now()) {
      const timer = setTimeout(() => {
        this.scheduled.delete(seq);
        this.enqueue(address, message, seq);
      }, at - Date.now());
      timer.unref();
      this.scheduled.set(seq, { seq, address, message, timer });
    } else {
      this.enqueue(address, message, seq);
    }
    return seq;
  }

  /** Cancels a scheduled message; false if it is unknown or already enqueued. */
  cancelScheduled(seq: number): boolean {
    const s = this.scheduled.get(seq);
    if (!s) return false;
    clearTimeout(s.timer);
    this.scheduled.delete(seq);
    return true;
  }

  private enqueue(address: string, message: AmqpMessage, seq: number): void {
    let target: Resolved;
    try {
      target = this.resolve(address);
    } catch {
      return; // the entity went away while the message was scheduled
    }
    const enqueuedAt = Date.now();
    const stored = (m: AmqpMessage): Stored => ({
      seq,
      enqueuedAt,
      message: m,
      deliveries: 0,
      state: 'active',
    });
    if (target.kind === 'queue') {
      target.store.add(stored(message));
    } else if (target.kind === 'topic') {
      for (const sub of target.topic.subscriptions.values()) {
        if (sub.options.requiresSession && (message.group_id ?? null) === null) continue;
        if ([...sub.rules.values()].some((r) => matches(r, message))) {
          sub.add(
            stored({ ...message, application_properties: { ...message.application_properties } }),
          );
        }
      }
    }
  }

  /** Every store (queues, subscriptions and their dead-letter queues), for shutdown. */
  close(): void {
    for (const s of this.scheduled.values()) clearTimeout(s.timer);
    for (const q of this.queues.values()) q.close();
    for (const t of this.topics.values()) for (const s of t.subscriptions.values()) s.close();
  }
}

/** `sb://host/queue` or `queue` → `queue`. */
export function entityPath(address: string): string {
  return address.replace(/^amqps?:\/\/[^/]+\/|^sb:\/\/[^/]+\//i, '').replace(/\/+$/, '');
}

function key(name: string): string {
  return name.toLowerCase();
}

export function ruleFilter(config: RuleFilterConfig): RuleFilter {
  if (config === true) return { kind: 'true' };
  if (config === false) return { kind: 'false' };
  return { kind: 'correlation', filter: config };
}

/** Service Bus correlation-filter semantics: every set field equals the message's. */
export function matches(rule: RuleFilter, m: AmqpMessage): boolean {
  if (rule.kind !== 'correlation') return rule.kind === 'true';
  const f = rule.filter;
  const system: [unknown, unknown][] = [
    [f.correlationId, m.correlation_id],
    [f.messageId, m.message_id],
    [f.to, m.to],
    [f.replyTo, m.reply_to],
    [f.subject, m.subject],
    [f.sessionId, m.group_id],
    [f.replyToSessionId, m.reply_to_group_id],
    [f.contentType, m.content_type],
  ];
  for (const [want, have] of system) {
    if (want !== undefined && want !== null && String(want) !== String(have)) return false;
  }
  for (const [name, want] of Object.entries(f.applicationProperties ?? {})) {
    const have = m.application_properties?.[name];
    if (have === undefined || String(plain(have)) !== String(want)) return false;
  }
  return true;
}

function plain(v: unknown): unknown {
  return v && typeof v === 'object' && 'value' in v ? (v as { value: unknown }).value : v;
}

function expired(stored: Stored): boolean {
  const ttl = stored.message.ttl;
  return typeof ttl === 'number' && ttl > 0 && stored.enqueuedAt + ttl < Date.now();
}

function scheduledTime(message: AmqpMessage): number | undefined {
  const v = message.message_annotations?.['x-opt-scheduled-enqueue-time'];
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  return undefined;
}

/** Abandon/defer/dead-letter may carry properties to set on the message. */
function modify(stored: Stored, properties: Record<string, unknown> | undefined): void {
  if (!properties || Object.keys(properties).length === 0) return;
  stored.message = {
    ...stored.message,
    application_properties: { ...stored.message.application_properties, ...properties },
  };
}

function insertBySeq(list: Stored[], stored: Stored): void {
  let i = list.length;
  while (i > 0 && list[i - 1]!.seq > stored.seq) i--;
  list.splice(i, 0, stored);
}

/** A random lock token (UUID string). */
export function newLockToken(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return uuidString(b);
}

export function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/**
 * .NET GUID byte order (first three fields little-endian), which the client undoes when it
 * turns a delivery tag into a lock token. The swap is its own inverse.
 */
export function dotnetGuidOrder(b: Buffer): Buffer {
  return Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}
