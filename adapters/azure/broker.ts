import { randomUUID } from 'node:crypto';
import {
  isServiceBusError,
  type ServiceBusClient,
  ServiceBusClient as ServiceBusClientClass,
  type ServiceBusMessage,
  type ServiceBusMessageBatch,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusSender,
  type ServiceBusSessionReceiver,
} from '@azure/service-bus';
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions, INTERNALS } from '../../src/broker.ts';
import {
  InvalidArgumentError,
  InvalidMessageError,
  MessageTooLargeError,
  SendError,
} from '../../src/errors.ts';
import { describeError, type Logger, silentLogger } from '../../src/log.ts';
import type {
  Capabilities,
  DeadLetterReason,
  Deliver,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Transport,
  Verdict,
} from '../../src/transport.ts';
import { checkOptionKeys, Idle, pick } from '../../src/util.ts';
import {
  bodyBytes,
  headersFromProperties,
  measureServiceBus,
  PROPERTIES_LIMIT_BYTES,
  propertiesSize,
  STANDARD_MAX_MESSAGE_BYTES,
  toServiceBusMessage,
} from './wire.ts';

/**
 * Options of {@link ServiceBusBroker}: those of every broker (`concurrency`, `maxDeliveries`,
 * `replyAllowList`, ...) plus where it connects, what it consumes and where it publishes.
 *
 * @example
 * ```ts
 * const options: ServiceBusBrokerOptions = {
 *   connectionString: process.env.SERVICEBUS_CONNECTION!,
 *   topic: 'events',
 *   subscription: 'orders',
 *   concurrency: 20,
 * };
 * ```
 */
export interface ServiceBusBrokerOptions extends BrokerOptions {
  /**
   * Service Bus connection string (a SAS key with Send/Listen rights is enough). Ignored when
   * `client` is given. Default: the environment variable `SERVICEBUS_CONNECTION_STRING`.
   */
  connectionString?: string;
  /**
   * A `ServiceBusClient` you built (managed identity, custom retry, websockets...). The broker
   * uses it and does not close it on `stop()`. Default: one built from `connectionString`.
   */
  client?: ServiceBusClient;
  /** Queue `start()` consumes from; also where `publish` sends unless `topic`/`publishTo` say otherwise. Default: none. */
  queue?: string;
  /** Topic `publish` sends to; with `subscription`, `start()` consumes that topic subscription. Default: none. */
  topic?: string;
  /** Subscription of `topic` that `start()` consumes. Default: none. */
  subscription?: string;
  /** Queue or topic `publish` sends to. Default: `topic`, else `queue`. */
  publishTo?: string;
  /**
   * Queue this instance's `request()` replies arrive on. Default: a per-instance queue
   * `cloudmom-reply-<uuid>`, which must exist or be creatable (see docs/azure.md: on Azure,
   * provision it or pass a queue that exists).
   */
  replyQueue?: string;
  /**
   * `replyQueue` is session-enabled and shared: this instance accepts a session of its own on
   * it (a random id) and sends requests with `replyToSessionId` set to it; responders send the
   * reply into that session, so instances sharing the queue never take each other's replies.
   * Needs only Listen/Send rights. Default false.
   */
  replySessions?: boolean;
  /** Longest the SDK renews a message lock while a handler runs (ms). Default 300 000 (5 min). */
  maxAutoLockRenewalDurationMs?: number;
  /** Largest message accepted by `publish` (body + properties, bytes). Default 262 144 (256 KB, Standard tier); Premium takes up to 100 MB. */
  maxMessageBytes?: number;
  /**
   * Service Bus cannot delay an abandon: a failed message keeps its lock (renewed) for its
   * retry delay, capped at this many ms, before it is abandoned. Default 5 000.
   */
  maxRetryHoldMs?: number;
  /**
   * The entities are session-enabled (`requiresSession`): `start()` accepts sessions and handles
   * each session's messages one at a time, in order (the group key is the session id); a
   * publish without `groupKey` gets its message id as session id, so it can be sent at all.
   * Default false.
   */
  sessions?: boolean;
  /** With `sessions`: sessions handled at once. Default: `concurrency`. */
  maxConcurrentSessions?: number;
  /** With `sessions`: a session with no message for this long is released for another. Default 1 000 ms. */
  sessionIdleMs?: number;
}

const SB_KEYS = [
  'connectionString',
  'client',
  'queue',
  'topic',
  'subscription',
  'publishTo',
  'replyQueue',
  'replySessions',
  'maxAutoLockRenewalDurationMs',
  'maxMessageBytes',
  'maxRetryHoldMs',
  'sessions',
  'maxConcurrentSessions',
  'sessionIdleMs',
] as const;

/**
 * Prefix of the per-instance reply queues; allowed as reply addresses by default.
 *
 * @example
 * ```ts
 * new ServiceBusBroker({ connectionString, replyAllowList: [`${REPLY_QUEUE_PREFIX}*`, 'cloudmom-replies'] });
 * ```
 */
export const REPLY_QUEUE_PREFIX = 'cloudmom-reply-';

/**
 * The cloudmom broker on Azure Service Bus (`@azure/service-bus` v7): queues and topics.
 * The target travels as the message `subject`, the correlation id, reply address, content
 * type and message id as the native properties, user headers as application properties, the
 * group key as the session id. Publishes are sent in `createMessageBatch` batches sized by the
 * link. `start()` consumes in peek-lock with `concurrency` concurrent calls, renews locks while a
 * handler runs, completes after the handlers and replies, abandons on failure (the service
 * counts deliveries) and dead-letters with a reason and description.
 *
 * @example
 * ```ts
 * import { ServiceBusBroker } from 'cloudmom/azure';
 * const broker = new ServiceBusBroker({ connectionString: process.env.SERVICEBUS_CONNECTION!, queue: 'hello' });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * const reply = await broker.request('Hello World!', 'hello');
 * await broker.stop();
 * ```
 */
export class ServiceBusBroker extends Broker {
  readonly #transport: ServiceBusTransport;

  constructor(options: ServiceBusBrokerOptions = {}) {
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...SB_KEYS], 'ServiceBusBroker');
    const [own, core] = pick(options, SB_KEYS);
    const transport = new ServiceBusTransport(own);
    super(transport, core);
    transport.logger = this[INTERNALS].logger;
    this.#transport = transport;
  }

  /** The native `ServiceBusClient` (injected or built from the connection string). */
  override get client(): ServiceBusClient {
    return this.#transport.client;
  }

  /** The queue or topic `publish` sends to (undefined when none was configured). */
  get publishTo(): string | undefined {
    return this.#transport.publishTo;
  }
}

/** How one received message is settled; registered by whoever received it. */
export interface Settler {
  /** Moves the message to the dead-letter sub-queue (or its stand-in) with the reason. */
  deadLetter(reason: DeadLetterReason): Promise<void>;
  /** True once the message was settled (dead-lettered) through this settler. */
  settled: boolean;
}

/** @internal the Service Bus transport; entrypoints reach it through `broker[INTERNALS]`. */
export class ServiceBusTransport implements Transport {
  readonly client: ServiceBusClient;
  readonly capabilities: Capabilities;
  readonly publishTo: string | undefined;
  /** The broker's logger, set once the core made it. */
  logger: Logger = silentLogger;
  readonly #ownsClient: boolean;
  readonly #queue: string | undefined;
  readonly #topic: string | undefined;
  readonly #subscription: string | undefined;
  readonly #replyQueue: string | undefined;
  readonly #replySessions: boolean;
  #replySessionId: string | undefined;
  /** Reply session ids asked for by received messages, by reply address and correlation id. */
  readonly #replySessionFor = new Map<string, string>();
  readonly #lockRenewalMs: number;
  readonly #retryHoldMs: number;
  readonly #sessions: boolean;
  readonly #maxSessions: number | undefined;
  readonly #sessionIdleMs: number;
  readonly #stopping = new AbortController();
  readonly #pumps: Promise<void>[] = [];
  readonly #senders = new Map<string, ServiceBusSender>();
  readonly #receivers: ServiceBusReceiver[] = [];
  readonly #subscriptions: { close(): Promise<void> }[] = [];
  readonly #settling = new Idle();
  readonly #settlers = new WeakMap<IncomingMessage, Settler>();
  readonly #holds = new Set<{ timer: NodeJS.Timeout; release(): void }>();
  #closed = false;

  constructor(options: Pick<ServiceBusBrokerOptions, (typeof SB_KEYS)[number]>) {
    for (const key of ['queue', 'topic', 'subscription', 'publishTo', 'replyQueue'] as const) {
      const v = options[key];
      if (v !== undefined && (typeof v !== 'string' || v === ''))
        throw new InvalidArgumentError(`ServiceBusBroker: ${key} must be a non-empty string`);
    }
    if (options.subscription !== undefined && options.topic === undefined)
      throw new InvalidArgumentError('ServiceBusBroker: subscription needs topic');
    if (options.client !== undefined) {
      if (typeof (options.client as { createSender?: unknown }).createSender !== 'function')
        throw new InvalidArgumentError('ServiceBusBroker: client must be a ServiceBusClient');
      this.client = options.client;
      this.#ownsClient = false;
    } else {
      const cs = options.connectionString ?? process.env.SERVICEBUS_CONNECTION_STRING;
      if (typeof cs !== 'string' || cs === '')
        throw new InvalidArgumentError(
          'ServiceBusBroker: give connectionString, client, or set SERVICEBUS_CONNECTION_STRING',
        );
      this.client = new ServiceBusClientClass(cs);
      this.#ownsClient = true;
    }
    this.#queue = options.queue;
    this.#topic = options.topic;
    this.#subscription = options.subscription;
    this.publishTo = options.publishTo ?? options.topic ?? options.queue;
    this.#replyQueue = options.replyQueue;
    this.#replySessions = options.replySessions ?? false;
    if (typeof this.#replySessions !== 'boolean')
      throw new InvalidArgumentError('ServiceBusBroker: replySessions must be a boolean');
    if (this.#replySessions && options.replyQueue === undefined)
      throw new InvalidArgumentError('ServiceBusBroker: replySessions needs replyQueue');
    this.#lockRenewalMs = nonNegative(
      options.maxAutoLockRenewalDurationMs ?? 300_000,
      'maxAutoLockRenewalDurationMs',
    );
    this.#retryHoldMs = nonNegative(options.maxRetryHoldMs ?? 5_000, 'maxRetryHoldMs');
    this.#sessions = options.sessions ?? false;
    if (typeof this.#sessions !== 'boolean')
      throw new InvalidArgumentError('ServiceBusBroker: sessions must be a boolean');
    this.#maxSessions = options.maxConcurrentSessions;
    if (
      this.#maxSessions !== undefined &&
      (!Number.isInteger(this.#maxSessions) || this.#maxSessions < 1)
    )
      throw new InvalidArgumentError(
        'ServiceBusBroker: maxConcurrentSessions must be an integer ≥ 1',
      );
    this.#sessionIdleMs = nonNegative(options.sessionIdleMs ?? 1_000, 'sessionIdleMs');
    const maxMessageBytes = options.maxMessageBytes ?? STANDARD_MAX_MESSAGE_BYTES;
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1024)
      throw new InvalidArgumentError('ServiceBusBroker: maxMessageBytes must be an integer ≥ 1024');
    this.capabilities = {
      name: 'servicebus',
      maxMessageBytes,
      measure: measureServiceBus,
      // One send() call may fill several link-sized `createMessageBatch` batches (packed by the
      // SDK's own size accounting, sent concurrently): hand it a few links' worth at once.
      maxBatchMessages: 4000,
      maxBatchBytes: 4 * maxMessageBytes,
      batchLingerMs: 0,
      ordering: this.#sessions,
      maxDelaySeconds: 14 * 24 * 3600,
      defaultReplyAllowList: [
        `${REPLY_QUEUE_PREFIX}*`,
        ...(options.replyQueue ? [options.replyQueue] : []),
      ],
    };
  }

  validate(message: OutgoingMessage): void {
    if (propertiesSize(message) > PROPERTIES_LIMIT_BYTES)
      throw new InvalidMessageError(
        `the message properties exceed the ${PROPERTIES_LIMIT_BYTES}-byte limit of Service Bus`,
      );
    if (message.messageId.length > 128 || (message.deduplicationId?.length ?? 0) > 128)
      throw new InvalidMessageError('Service Bus message ids are at most 128 characters');
    if ((message.groupKey?.length ?? 0) > 128)
      throw new InvalidMessageError(
        'Service Bus session ids (groupKey) are at most 128 characters',
      );
  }

  #sender(entity: string): ServiceBusSender {
    let s = this.#senders.get(entity);
    if (!s) {
      s = this.client.createSender(entity);
      this.#senders.set(entity, s);
    }
    return s;
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    const outcomes: SendOutcome[] = new Array(batch.length);
    // The batcher keys by destination, but do not rely on it: group here.
    const groups = new Map<string, number[]>();
    batch.forEach((m, i) => {
      const entity = m.destination ?? this.publishTo;
      if (entity === undefined) {
        outcomes[i] = {
          ok: false,
          error: new InvalidArgumentError(
            'ServiceBusBroker: nowhere to publish; set the option publishTo, topic or queue',
          ),
        };
        return;
      }
      if (this.#closed && m.destination === undefined) {
        outcomes[i] = { ok: false, error: new SendError('the Service Bus transport is closed') };
        return;
      }
      const list = groups.get(entity);
      if (list) list.push(i);
      else groups.set(entity, [i]);
    });
    await Promise.all(
      [...groups].map(([entity, indexes]) => this.#sendTo(entity, batch, indexes, outcomes)),
    );
    return outcomes;
  }

  async #sendTo(
    entity: string,
    all: readonly OutgoingMessage[],
    indexes: number[],
    outcomes: SendOutcome[],
  ): Promise<void> {
    const sender = this.#sender(entity);
    let current: { batch: ServiceBusMessageBatch; members: number[] } | undefined;
    const sends: Promise<void>[] = [];
    const flush = () => {
      if (!current || current.members.length === 0) return;
      const { batch, members } = current;
      current = undefined;
      sends.push(
        sender.sendMessages(batch).then(
          () => {
            for (const i of members) outcomes[i] = { ok: true, messageId: idOf(all[i]!) };
          },
          (err: unknown) => {
            const error = sendError(entity, err);
            for (const i of members) outcomes[i] = { ok: false, error };
          },
        ),
      );
    };
    try {
      for (const i of indexes) {
        const m = all[i]!;
        const native = toServiceBusMessage(m);
        if (this.#replySessionId !== undefined && m.replyTo === this.#replyQueue)
          native.replyToSessionId = this.#replySessionId;
        if (m.destination !== undefined && m.correlationId !== undefined) {
          // A reply: into the session the request asked for, if it asked for one.
          const session = this.#replySessionFor.get(replyKey(m.destination, m.correlationId));
          if (session !== undefined) native.sessionId = session;
        }
        if (this.#sessions && native.sessionId === undefined)
          native.sessionId = String(native.messageId);
        current ??= { batch: await sender.createMessageBatch(), members: [] };
        if (current.batch.tryAddMessage(native)) {
          current.members.push(i);
          continue;
        }
        if (current.members.length > 0) {
          flush();
          current = { batch: await sender.createMessageBatch(), members: [] };
          if (current.batch.tryAddMessage(native)) {
            current.members.push(i);
            continue;
          }
        }
        outcomes[i] = {
          ok: false,
          error: new MessageTooLargeError(
            measureServiceBus(m),
            current.batch.maxSizeInBytes,
            `the Service Bus link to ${entity}`,
          ),
        };
      }
      flush();
    } catch (err) {
      // createMessageBatch failed (entity missing, connection): every unsent message fails.
      const error = sendError(entity, err);
      for (const i of indexes) outcomes[i] ??= { ok: false, error };
    }
    await Promise.all(sends);
  }

  /** Registers how `message` is dead-lettered (entrypoints and receivers call this). */
  register(message: IncomingMessage, settler: Settler): void {
    this.#settlers.set(message, settler);
    const session = replyToSessionIdOf(message.raw);
    if (session !== undefined && message.replyTo !== undefined) {
      this.#replySessionFor.set(
        replyKey(message.replyTo, message.correlationId ?? message.messageId),
        session,
      );
      // Bounded: entries are needed only until the reply is sent.
      if (this.#replySessionFor.size > 10_000)
        this.#replySessionFor.delete(this.#replySessionFor.keys().next().value!);
    }
  }

  /** The settler registered for `message`, if any. */
  settlerOf(message: IncomingMessage): Settler | undefined {
    return this.#settlers.get(message);
  }

  async deadLetter(message: IncomingMessage, reason: DeadLetterReason): Promise<void> {
    const settler = this.#settlers.get(message);
    if (!settler)
      throw new InvalidArgumentError(
        'this message was not received through this broker; it cannot be dead-lettered here',
      );
    await settler.deadLetter(reason);
    settler.settled = true;
  }

  async consume(deliver: Deliver, options: { concurrency: number }): Promise<void> {
    if (this.#queue === undefined && this.#subscription === undefined) {
      this.logger.warn(
        'ServiceBusBroker started without queue or subscription: nothing to consume',
      );
      return;
    }
    const receiverOptions = {
      receiveMode: 'peekLock' as const,
      skipParsingBodyAsJson: true,
      maxAutoLockRenewalDurationInMs: this.#lockRenewalMs,
    };
    if (this.#sessions) {
      this.#pumps.push(this.#acceptSessions(deliver, this.#maxSessions ?? options.concurrency));
      return;
    }
    const receiver =
      this.#subscription !== undefined
        ? this.client.createReceiver(this.#topic!, this.#subscription, receiverOptions)
        : this.client.createReceiver(this.#queue!, receiverOptions);
    this.#listen(receiver, deliver, options.concurrency);
  }

  #listen(receiver: ServiceBusReceiver, deliver: Deliver, concurrency: number): void {
    this.#receivers.push(receiver);
    const gate = new SettleGate();
    const sub = receiver.subscribe(
      {
        processMessage: async (native) => {
          await this.#handle(receiver, gate, native, deliver);
        },
        processError: async (args) => {
          if (this.#closed) return;
          this.logger.warn('Service Bus receiver error', {
            entityPath: args.entityPath,
            source: args.errorSource,
            error: describeError(args.error),
          });
        },
      },
      { autoCompleteMessages: false, maxConcurrentCalls: concurrency },
    );
    this.#subscriptions.push(sub);
  }

  /**
   * Accepts sessions one at a time (a single pending accept, as few attaches as possible) and
   * handles up to `max` of them at once; see #drainSession.
   */
  async #acceptSessions(deliver: Deliver, max: number): Promise<void> {
    const signal = this.#stopping.signal;
    const options = {
      receiveMode: 'peekLock' as const,
      skipParsingBodyAsJson: true,
      maxAutoLockRenewalDurationInMs: this.#lockRenewalMs,
      abortSignal: signal,
    };
    const active = new Set<Promise<void>>();
    while (!signal.aborted) {
      if (active.size >= max) {
        await Promise.race(active);
        continue;
      }
      let receiver: ServiceBusSessionReceiver;
      try {
        receiver =
          this.#subscription !== undefined
            ? await this.client.acceptNextSession(this.#topic!, this.#subscription, options)
            : await this.client.acceptNextSession(this.#queue!, options);
      } catch (err) {
        if (signal.aborted) return;
        // No session available within the service's timeout: ask again.
        if (
          isServiceBusError(err) &&
          (err.code === 'ServiceTimeout' || err.code === 'SessionCannotBeLocked')
        )
          continue;
        this.logger.warn('accepting a Service Bus session failed; retrying in 1 s', {
          error: describeError(err),
        });
        await this.#hold(1000);
        continue;
      }
      if (signal.aborted) {
        await receiver.close().catch(() => {});
        return;
      }
      const run: Promise<void> = this.#drainSession(receiver, deliver, signal).finally(() =>
        active.delete(run),
      );
      active.add(run);
    }
  }

  /**
   * Handles one session's messages one after the other (in order: after a failure the
   * following messages wait, still locked, until the failed one was handled again), and
   * releases the session after `sessionIdleMs` without messages.
   */
  async #drainSession(
    receiver: ServiceBusSessionReceiver,
    deliver: Deliver,
    signal: AbortSignal,
  ): Promise<void> {
    const gate = new SettleGate();
    try {
      // Received, still locked by the session, not yet handled (kept across a retry).
      let held: ServiceBusReceivedMessage[] = [];
      while (!signal.aborted) {
        const received = await receiver.receiveMessages(10, {
          maxWaitTimeInMs: this.#sessionIdleMs,
          abortSignal: signal,
        });
        if (received.length === 0 && held.length === 0) break;
        // An abandoned message comes back with its old sequence number: merge by it, so it is
        // handled again before the messages that followed it.
        const batch = [...held, ...received].sort(bySequence);
        held = [];
        for (let i = 0; i < batch.length; i++) {
          const native = batch[i]!;
          if (signal.aborted) {
            // Stopping: what was received but not started goes back, in order.
            await gate.solo(() => receiver.abandonMessage(native)).catch(() => {});
            continue;
          }
          const verdict = await this.#handle(receiver, gate, native, deliver);
          if (verdict?.kind === 'retry') {
            held = batch.slice(i + 1); // wait for the failed one to come back first
            break;
          }
        }
      }
    } catch (err) {
      if (!signal.aborted)
        this.logger.warn('a Service Bus session receiver failed; its messages come back', {
          sessionId: receiver.sessionId,
          error: describeError(err),
        });
    } finally {
      await receiver.close().catch(() => {});
    }
  }

  /**
   * Decodes one received message, hands it to the core and settles it by the verdict;
   * undefined when its body could not be read at all (dead-lettered as undecodable).
   */
  async #handle(
    receiver: ServiceBusReceiver,
    gate: SettleGate,
    native: ServiceBusReceivedMessage,
    deliver: Deliver,
  ): Promise<Verdict | undefined> {
    this.#settling.enter();
    try {
      let incoming: IncomingMessage;
      try {
        incoming = fromReceived(native);
      } catch (err) {
        // A body that cannot be read as bytes (an AMQP value JSON cannot encode): poison.
        await gate.solo(() =>
          receiver.deadLetterMessage(native, {
            deadLetterReason: 'undecodable',
            deadLetterErrorDescription: describeError(err),
          }),
        );
        return undefined;
      }
      this.register(incoming, {
        settled: false,
        deadLetter: (reason) =>
          gate.solo(() =>
            receiver.deadLetterMessage(native, {
              deadLetterReason: reason.code,
              deadLetterErrorDescription: reason.description,
            }),
          ),
      });
      const verdict = await deliver(incoming);
      await this.#settle(receiver, gate, native, incoming, verdict);
      return verdict;
    } finally {
      this.#settling.leave();
    }
  }

  async #settle(
    receiver: ServiceBusReceiver,
    gate: SettleGate,
    native: ServiceBusReceivedMessage,
    incoming: IncomingMessage,
    verdict: Verdict,
  ): Promise<void> {
    try {
      if (verdict.kind === 'ack') {
        await gate.shared(() => receiver.completeMessage(native));
      } else if (verdict.kind === 'retry') {
        await this.#hold(Math.min(verdict.delayMs, this.#retryHoldMs));
        await gate.solo(() => receiver.abandonMessage(native));
      } else {
        await this.deadLetter(incoming, verdict.reason);
      }
    } catch (err) {
      // The lock was lost or the link closed: the service redelivers it (at-least-once).
      this.logger.warn('settling a Service Bus message failed; it will be redelivered', {
        messageId: native.messageId,
        verdict: verdict.kind,
        error: describeError(err),
      });
    }
  }

  /** Waits `ms`, cut short by `stopConsuming()` so stop() does not wait for backoffs. */
  #hold(ms: number): Promise<void> {
    if (ms <= 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const hold = {
        timer: setTimeout(() => hold.release(), ms),
        release: () => {
          clearTimeout(hold.timer);
          this.#holds.delete(hold);
          resolve();
        },
      };
      this.#holds.add(hold);
    });
  }

  async openReplyAddress(deliver: Deliver): Promise<string> {
    const name = this.#replyQueue ?? `${REPLY_QUEUE_PREFIX}${randomUUID()}`;
    const options = {
      receiveMode: 'peekLock' as const,
      skipParsingBodyAsJson: true,
      maxAutoLockRenewalDurationInMs: this.#lockRenewalMs,
    };
    if (this.#replySessions) {
      const sessionId = `cloudmom-${randomUUID()}`;
      // The session lock is this instance's claim on its replies: keep renewing it (7 days).
      const receiver = await this.client.acceptSession(name, sessionId, {
        ...options,
        maxAutoLockRenewalDurationInMs: 7 * 24 * 3600 * 1000,
      });
      this.#replySessionId = sessionId;
      this.#listen(receiver, deliver, 100);
      return name;
    }
    this.#listen(this.client.createReceiver(name, options), deliver, 100);
    return name;
  }

  async stopConsuming(): Promise<void> {
    this.#stopping.abort();
    const subs = this.#subscriptions.splice(0);
    await Promise.allSettled(subs.map((s) => s.close()));
    for (const h of [...this.#holds]) h.release();
    // Session pumps waiting in acceptNextSession are not awaited (the service may hold the
    // attach up to its timeout); messages in flight are, through #settling in close().
    this.#pumps.splice(0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.stopConsuming();
    await this.#settling.wait();
    const closing: Promise<unknown>[] = [
      ...this.#receivers.splice(0).map((r) => r.close()),
      ...[...this.#senders.values()].map((s) => s.close()),
    ];
    this.#senders.clear();
    await Promise.allSettled(closing);
    if (this.#ownsClient) await this.client.close().catch(() => {});
  }
}

/**
 * Orders settlements on one receiver link. rhea 3.0.5 (under `@azure/service-bus` 7.9) writes
 * the dispositions of consecutive deliveries settled in the same tick as one frame carrying the
 * first one's outcome, and compares outcomes only once a run has two members: a complete
 * followed by an abandon or dead-letter in the same tick completes both (the message is lost),
 * and a dead-letter followed by a complete dead-letters both. Completes may share a frame
 * (same outcome); every other settlement runs alone, after the completes in flight resolved
 * (their frames were written) and before new ones start.
 */
export class SettleGate {
  #shared = 0;
  #idle: (() => void)[] = [];
  #soloTail: Promise<void> = Promise.resolve();
  #soloRunning: Promise<void> | undefined;

  /** Runs a settlement that may share a disposition frame with others of its kind. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#soloRunning) await this.#soloRunning;
    this.#shared++;
    try {
      return await fn();
    } finally {
      this.#shared--;
      if (this.#shared === 0) for (const w of this.#idle.splice(0)) w();
    }
  }

  /** Runs a settlement alone: no other settlement of this link is written in the same tick. */
  async solo<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#soloTail;
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    this.#soloTail = previous.then(() => mine);
    await previous;
    this.#soloRunning = mine;
    try {
      while (this.#shared > 0) await new Promise<void>((r) => this.#idle.push(r));
      return await fn();
    } finally {
      this.#soloRunning = undefined;
      release();
    }
  }
}

/** Turns a message received by `@azure/service-bus` into the core's form. */
export function fromReceived(native: ServiceBusReceivedMessage): IncomingMessage {
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const count = native.deliveryCount;
  const enqueued = native.enqueuedTimeUtc as unknown;
  return {
    body: bodyBytes(native),
    target: text(native.subject),
    messageId: stringOrUndefined(native.messageId) ?? text(native.lockToken) ?? randomUUID(),
    contentType: text(native.contentType),
    headers: headersFromProperties(native.applicationProperties),
    correlationId: stringOrUndefined(native.correlationId),
    replyTo: text(native.replyTo),
    // The AMQP header counts earlier attempts (0 first); the JS SDK exposes it raw.
    deliveryCount: (Number.isInteger(count) && count! >= 0 ? count! : 0) + 1,
    publishedAt:
      enqueued instanceof Date && !Number.isNaN(enqueued.getTime()) ? enqueued : undefined,
    groupKey: text(native.sessionId),
    raw: native,
  };
}

function replyKey(address: string, correlationId: string): string {
  return `${address}\n${correlationId}`;
}

/** The `replyToSessionId` of a received message (SDK message, or plain-binding metadata). */
function replyToSessionIdOf(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as { replyToSessionId?: unknown; metadata?: { replyToSessionId?: unknown } };
  const v = r.replyToSessionId ?? r.metadata?.replyToSessionId;
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function bySequence(a: ServiceBusReceivedMessage, b: ServiceBusReceivedMessage): number {
  const x = a.sequenceNumber;
  const y = b.sequenceNumber;
  if (!x || !y) return 0;
  return x.compare(y);
}

function stringOrUndefined(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('hex') : String(v);
}

function idOf(m: OutgoingMessage): string {
  return m.deduplicationId ?? m.messageId;
}

function sendError(entity: string, err: unknown): Error {
  if (err instanceof SendError) return err;
  const retryable = isServiceBusError(err)
    ? err.retryable || err.code === 'ServiceBusy' || err.code === 'ServiceTimeout'
    : true;
  return new SendError(`sending to Service Bus entity "${entity}" failed: ${describeError(err)}`, {
    cause: err,
    retryable,
  });
}

function nonNegative(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new InvalidArgumentError(`ServiceBusBroker: ${name} must be a number ≥ 0`);
  return v;
}

export type { ServiceBusMessage };
