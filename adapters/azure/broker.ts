/**
 * `ServiceBusBroker`: the core {@link Broker} on a transport that translates to Azure Service
 * Bus (`@azure/service-bus` v7, loaded on first use). The core owns the receive loop, the
 * concurrency bound, per-key order, retries and settlement decisions; this file maps them:
 *
 * - send: the core's batch (sized to one link batch) → one `createMessageBatch`;
 * - a queue or subscription → a {@link StreamSource}: `receiver.subscribe` with
 *   `maxConcurrentCalls` = the broker's concurrency feeding a {@link PushBuffer}; the SDK adds
 *   credit back only when a message is settled, so at most `concurrency` are unsettled;
 * - a session-enabled entity → a {@link SessionSource}: sessions accepted one at a time, up to
 *   `maxConcurrentSessions`, each read with `receiveMessages` while the core has room, its
 *   messages carrying the session id as group key, released after `sessionIdleMs` idle;
 * - ack = complete, nack = abandon (Service Bus cannot delay it: the core holds the message
 *   for `maxRetryHoldMs` at most first), dead-letter = the native sub-queue with
 *   `DeadLetterReason` / `DeadLetterErrorDescription`;
 * - the SDK renews message and session locks (`maxAutoLockRenewalDurationMs`).
 */

import type {
  ServiceBusClient,
  ServiceBusMessage,
  ServiceBusMessageBatch,
  ServiceBusReceivedMessage,
  ServiceBusReceiver,
  ServiceBusSender,
  ServiceBusSessionReceiver,
} from '@azure/service-bus';
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions } from '../../src/broker.ts';
import type { ErrorCode } from '../../src/errors.ts';
import {
  InvalidArgumentError,
  InvalidMessageError,
  MessageTooLargeError,
  SendError,
} from '../../src/errors.ts';
import { describeError, type Logger, silentLogger } from '../../src/log.ts';
import { optionalPeer } from '../../src/peer.ts';
import { failAll } from '../../src/publisher.ts';
import { PushBuffer } from '../../src/sources.ts';
import type {
  Capabilities,
  DeadLetterReason,
  DeadLetters,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Source,
  Transport,
} from '../../src/transport.ts';
import { SENT } from '../../src/transport.ts';
import { BoundedSet, checkNonEmpty, checkNumber, checkOptionKeys, pick } from '../../src/util.ts';
import { type LinkBatch, LinkBatchWriter } from './amqp.ts';
import {
  DEAD_LETTER_TEXT_MAX,
  fromReceived,
  measureServiceBus,
  PROPERTIES_LIMIT_BYTES,
  propertiesSize,
  replySessions,
  STANDARD_MAX_MESSAGE_BYTES,
  surelySmallProperties,
  toServiceBusMessage,
} from './wire.ts';

type ServiceBusModule = typeof import('@azure/service-bus');
/** `@azure/service-bus`, loaded on first use (an optional peer dependency of cloudmom). */
const sdk = optionalPeer<ServiceBusModule>('@azure/service-bus', 'cloudmom/azure');

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
   * provision it or pass a queue that exists). Without `replySessions`, a reply on it that
   * answers no request of this instance is given back (abandoned) for the instance that sent
   * the request, not consumed — safe while fewer instances share the queue than its max
   * delivery count; `replySessions` is the way to share one.
   */
  replyQueue?: string;
  /**
   * `replyQueue` is session-enabled and shared: this instance accepts a session of its own on
   * it (a random id) and sends requests with `replyToSessionId` set to it; responders send the
   * reply into that session, so instances sharing the queue never take each other's replies.
   * Needs only Listen/Send rights. Default false.
   */
  replySessions?: boolean;
  /** Longest the SDK renews a message (or session) lock while a handler runs (ms). Default 300 000 (5 min). */
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
  /**
   * Queue that receives a copy of each message the core dead-letters where Service Bus cannot
   * dead-letter natively: in `azureFunctionHandler` with the plain (non-SDK) binding. The copy
   * carries `dead_letter_reason`, `dead_letter_description` and `delivery_count` application
   * properties. Default: none (such an invocation fails; see `azureFunctionHandler`).
   */
  poisonQueue?: string;
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
  'poisonQueue',
] as const;

type OwnOptions = Pick<ServiceBusBrokerOptions, (typeof SB_KEYS)[number]>;

/**
 * Prefix of the per-instance reply queues; allowed as reply addresses by default.
 *
 * @example
 * ```ts
 * new ServiceBusBroker({ connectionString, replyAllowList: [`${REPLY_QUEUE_PREFIX}*`, 'cloudmom-replies'] });
 * ```
 */
export const REPLY_QUEUE_PREFIX = 'cloudmom-reply-';

/** The dead-letter reader of the CLI (adapters/azure/dlq.ts). */
const DLQ_MODULE = './dlq.ts';

/** Messages in hand on a reply address (the core's budget for reply sources). */
const REPLY_CREDIT = 100;
/** Most messages one session `receiveMessages` call asks for. */
const SESSION_RECEIVE_MAX = 32;
/**
 * Session accepts in flight at once. An accept is a link attach that the service answers
 * when it has locked a session (tens of ms), so one at a time caps a queue of one-message
 * sessions at a few dozen messages a second.
 */
const SESSION_ACCEPTS = 4;
/** Correlation ids of requests sent to a shared reply queue that are remembered. */
const OWN_REQUESTS = 20_000;
/** Senders kept open, one per destination (destinations come from messages: bounded). */
const MAX_SENDERS = 100;

/**
 * The cloudmom broker on Azure Service Bus (`@azure/service-bus` v7): queues and topics.
 * The target travels as the message `subject`, the correlation id, reply address, content
 * type and message id as the native properties, user headers as application properties, the
 * group key as the session id. Publishes are sent in `createMessageBatch` batches sized by the
 * link. `start()` consumes in peek-lock with up to `concurrency` messages in hand, the SDK
 * renewing their locks; a message is completed after its handlers and replies, abandoned on
 * failure (the service counts deliveries) and dead-lettered natively with a reason and
 * description.
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
    transport.concurrency = this.concurrency;
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

  /** The queue dead-letter copies go to where Service Bus cannot dead-letter (see the option). */
  get poisonQueue(): string | undefined {
    return this.#transport.poisonQueue;
  }
}

/** The Service Bus transport: translation only (see the module doc). */
class ServiceBusTransport implements Transport {
  readonly capabilities: Capabilities;
  readonly publishTo: string | undefined;
  readonly poisonQueue: string | undefined;
  /** The broker's concurrency: the credit of the consuming sources. Set by the broker. */
  concurrency = 10;
  #logger: Logger = silentLogger;
  /** Writes messages into link batches (adapters/azure/amqp.ts); one per transport. */
  readonly #writer = new LinkBatchWriter(() =>
    this.#logger.info(
      'Service Bus: this @azure/service-bus encodes messages in another way than cloudmom; the SDK encodes them all from now on',
    ),
  );
  readonly #ownsClient: boolean;
  /** The client; built from the connection string on first use when none was given. */
  #client: ServiceBusClient | undefined;
  readonly #connectionString: string | undefined;
  readonly #queue: string | undefined;
  readonly #topic: string | undefined;
  readonly #subscription: string | undefined;
  readonly #replyQueue: string | undefined;
  readonly #replySessions: boolean;
  /** The reply address opened, and its session (with replySessions). */
  #replyAddress: string | undefined;
  #replySessionId: string | undefined;
  /** Correlation ids of this instance's requests, when the reply queue is shared without sessions. */
  #ownRequests: BoundedSet | undefined;
  readonly #lockRenewalMs: number;
  readonly #sessions: boolean;
  readonly #maxSessions: number | undefined;
  readonly #sessionIdleMs: number;
  readonly #senders = new Map<string, Sender>();
  readonly #sources = new Set<Source>();
  #closed = false;

  constructor(options: OwnOptions) {
    for (const key of [
      'queue',
      'topic',
      'subscription',
      'publishTo',
      'replyQueue',
      'poisonQueue',
    ] as const) {
      if (options[key] !== undefined) checkNonEmpty(options[key], `ServiceBusBroker: ${key}`);
    }
    if (options.subscription !== undefined && options.topic === undefined)
      throw new InvalidArgumentError('ServiceBusBroker: subscription needs topic');
    if (options.client !== undefined) {
      if (typeof (options.client as { createSender?: unknown }).createSender !== 'function')
        throw new InvalidArgumentError('ServiceBusBroker: client must be a ServiceBusClient');
      this.#client = options.client;
      this.#ownsClient = false;
    } else {
      const cs = options.connectionString ?? process.env.SERVICEBUS_CONNECTION_STRING;
      if (typeof cs !== 'string' || cs === '')
        throw new InvalidArgumentError(
          'ServiceBusBroker: give connectionString, client, or set SERVICEBUS_CONNECTION_STRING',
        );
      this.#connectionString = cs;
      this.#ownsClient = true;
    }
    this.#queue = options.queue;
    this.#topic = options.topic;
    this.#subscription = options.subscription;
    this.publishTo = options.publishTo ?? options.topic ?? options.queue;
    this.poisonQueue = options.poisonQueue;
    this.#replyQueue = options.replyQueue;
    this.#replySessions = options.replySessions ?? false;
    if (typeof this.#replySessions !== 'boolean')
      throw new InvalidArgumentError('ServiceBusBroker: replySessions must be a boolean');
    if (this.#replySessions && options.replyQueue === undefined)
      throw new InvalidArgumentError('ServiceBusBroker: replySessions needs replyQueue');
    this.#lockRenewalMs = checkNumber(
      options.maxAutoLockRenewalDurationMs ?? 300_000,
      'ServiceBusBroker: maxAutoLockRenewalDurationMs',
      0,
    );
    const retryHoldMs = checkNumber(
      options.maxRetryHoldMs ?? 5_000,
      'ServiceBusBroker: maxRetryHoldMs',
      0,
    );
    this.#sessions = options.sessions ?? false;
    if (typeof this.#sessions !== 'boolean')
      throw new InvalidArgumentError('ServiceBusBroker: sessions must be a boolean');
    this.#maxSessions =
      options.maxConcurrentSessions === undefined
        ? undefined
        : checkNumber(options.maxConcurrentSessions, 'ServiceBusBroker: maxConcurrentSessions');
    this.#sessionIdleMs = checkNumber(
      options.sessionIdleMs ?? 1_000,
      'ServiceBusBroker: sessionIdleMs',
      0,
    );
    const maxMessageBytes = options.maxMessageBytes ?? STANDARD_MAX_MESSAGE_BYTES;
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1024)
      throw new InvalidArgumentError('ServiceBusBroker: maxMessageBytes must be an integer ≥ 1024');
    this.capabilities = {
      name: 'servicebus',
      maxMessageBytes,
      measure: measureServiceBus,
      // One core batch is one link batch (256 KB Standard, 1 MB Premium): one layer of batching.
      // `measure` counts what a message adds to a batch; the batch's envelope (which repeats
      // its first message's properties) gets the last KB. A batch that still does not fit
      // (a first message with large properties) is sent as two.
      maxBatchMessages: 4000,
      maxBatchBytes: Math.min(maxMessageBytes, 1024 * 1024) - 1024,
      batchLingerMs: 0,
      ordering: this.#sessions,
      maxDelaySeconds: 14 * 24 * 3600,
      nackDelay: false,
      retryHoldMs,
      deadLetter: 'native',
      request: true,
      defaultReplyAllowList: [
        `${REPLY_QUEUE_PREFIX}*`,
        ...(options.replyQueue ? [options.replyQueue] : []),
      ],
    };
  }

  /** The native client (loads `@azure/service-bus` and connects lazily, on first use). */
  get client(): ServiceBusClient {
    this.#client ??= new (sdk().ServiceBusClient)(this.#connectionString!);
    return this.#client;
  }

  attach(context: { readonly logger: Logger }): void {
    this.#logger = context.logger;
  }

  validate(message: OutgoingMessage): void {
    if (!surelySmallProperties(message) && propertiesSize(message) > PROPERTIES_LIMIT_BYTES)
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

  isRetryable(err: unknown): boolean {
    const code = serviceBusCode(err);
    if (code !== undefined) {
      const retryable = (err as { retryable?: unknown }).retryable === true;
      return retryable || code === 'ServiceBusy' || code === 'ServiceTimeout';
    }
    // Programming errors will not go away; anything else (network, link) may.
    return !(err instanceof TypeError || err instanceof RangeError);
  }

  errorCode(err: unknown): ErrorCode {
    return serviceBusCode(err) === 'MessagingEntityNotFound' ? 'not-found' : 'send-failed';
  }

  deadLetterAddress(): string {
    if (this.poisonQueue === undefined)
      throw new InvalidArgumentError(
        'ServiceBusBroker: no poisonQueue to copy dead letters to (Service Bus dead-letters natively)',
      );
    return this.poisonQueue;
  }

  send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    const entity = batch[0]?.destination ?? this.publishTo;
    if (entity === undefined) {
      const error = new InvalidArgumentError(
        'ServiceBusBroker: nowhere to publish; set the option publishTo, topic or queue',
      );
      return Promise.resolve(failAll(batch.length, error));
    }
    if (this.#closed)
      return Promise.resolve(
        failAll(batch.length, new SendError('the Service Bus transport is closed')),
      );
    let entry: Sender;
    try {
      entry = this.#sender(entity);
    } catch (error) {
      return Promise.reject(error);
    }
    entry.busy++;
    // Packed into link batches now where the sender can make them at once: then nothing here
    // holds `batch` once this returns, only the encoded link batches while they are in flight.
    return this.#pack(entry, entity, batch)
      .then(({ outcomes, sends }) => Promise.all(sends).then(() => outcomes))
      .finally(() => {
        entry.busy--;
        if (entry.evicted && entry.busy === 0) void entry.sender.close().catch(() => {});
      });
  }

  /** A sender per destination, the least recently used closed beyond {@link MAX_SENDERS}. */
  #sender(entity: string): Sender {
    let entry = this.#senders.get(entity);
    if (entry) {
      this.#senders.delete(entity);
      this.#senders.set(entity, entry);
      return entry;
    }
    entry = { sender: this.client.createSender(entity), busy: 0 };
    this.#senders.set(entity, entry);
    if (this.#senders.size > MAX_SENDERS) {
      const [oldest, old] = this.#senders.entries().next().value!;
      this.#senders.delete(oldest);
      old.evicted = true;
      if (old.busy === 0) void old.sender.close().catch(() => {});
    }
    return entry;
  }

  /** An empty link batch: made at once when the sender can ({@link linkBatchMaker}), else awaited. */
  #linkBatch(entry: Sender): ServiceBusMessageBatch | Promise<ServiceBusMessageBatch> {
    if (entry.makeBatch !== undefined) return entry.makeBatch();
    return entry.sender.createMessageBatch().then((made) => {
      entry.makeBatch ??= linkBatchMaker(made);
      return made;
    });
  }

  /**
   * Encodes `batch` into link batches and starts sending each as it fills: one outcome per
   * message (a member's final once its send settles) and the sends to wait for. Awaits only
   * where a link batch has to be awaited; without that it runs to the end in the call.
   */
  async #pack(
    entry: Sender,
    entity: string,
    batch: readonly OutgoingMessage[],
  ): Promise<{ outcomes: SendOutcome[]; sends: Promise<void>[] }> {
    const { sender } = entry;
    const outcomes: SendOutcome[] = new Array(batch.length);
    const sends: Promise<void>[] = [];
    const send = (native: ServiceBusMessageBatch | ServiceBusMessage, members: number[]) =>
      sends.push(
        sender.sendMessages(native).then(undefined, (error: unknown) => {
          for (const i of members) outcomes[i] = { ok: false, error };
          // the next batch is made from a fresh createMessageBatch (a link re-attached after a
          // failure may allow another size)
          entry.makeBatch = undefined;
        }),
      );
    let current: (LinkBatch & { members: number[] }) | undefined;
    const flush = () => {
      if (current && current.members.length > 0) send(current.batch, current.members);
      current = undefined;
    };
    let i = 0;
    try {
      for (; i < batch.length; i++) {
        const m = batch[i]!;
        const native = this.#toNative(m);
        // provisional: replaced by the error if its send fails
        outcomes[i] = sentOutcome(m);
        if (current !== undefined && this.#writer.tryAdd(current, native)) {
          current.members.push(i);
          continue;
        }
        // no batch yet, or a full one: the next (an empty one it did not fit is not retried)
        if (current === undefined || current.members.length > 0) {
          flush();
          const made = this.#linkBatch(entry);
          // awaited only when it has to be: an `await` yields even on a batch made at once
          current = { batch: made instanceof Promise ? await made : made, own: false, members: [] };
          if (this.#writer.tryAdd(current, native)) {
            current.members.push(i);
            continue;
          }
        }
        if (measureServiceBus(m) <= this.capabilities.maxMessageBytes) {
          // Larger than a batch may be (Premium large messages): sent on its own.
          send(native, [i]);
          continue;
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
    } catch (error) {
      // createMessageBatch failed (entity missing, connection), or the SDK refused a message:
      // every message not yet handed to a send fails with it.
      const failed: SendOutcome = { ok: false, error };
      for (const j of current?.members ?? []) outcomes[j] = failed;
      for (let j = i; j < batch.length; j++) outcomes[j] = failed;
    }
    return { outcomes, sends };
  }

  /** The native message of an outgoing one, with the session and reply bookkeeping it needs. */
  #toNative(m: OutgoingMessage): ServiceBusMessage {
    const native = toServiceBusMessage(m);
    if (m.replyTo !== undefined && m.replyTo === this.#replyAddress) {
      if (this.#replySessionId !== undefined) native.replyToSessionId = this.#replySessionId;
      else if (m.correlationId !== undefined) this.#ownRequests?.add(m.correlationId);
    }
    if (m.destination !== undefined && m.correlationId !== undefined) {
      // A reply: into the session its request asked for, if it asked for one.
      const session = replySessions.lookup(m.destination, m.correlationId);
      if (session !== undefined) native.sessionId = session;
    }
    if (this.#sessions && native.sessionId === undefined)
      native.sessionId = String(native.messageId);
    return native;
  }

  async open(): Promise<Source[]> {
    if (this.#queue === undefined && this.#subscription === undefined) {
      this.#logger.warn(
        'ServiceBusBroker started without queue or subscription: nothing to consume',
      );
      return [];
    }
    const name =
      this.#subscription !== undefined
        ? `${this.#topic}/Subscriptions/${this.#subscription}`
        : this.#queue!;
    const source: Source = this.#sessions
      ? new SessionSource(this.#sessionSettings(name))
      : new StreamSource(this.#receiver(), name, this.concurrency, this.#logger);
    this.#sources.add(source);
    return [source];
  }

  #receiverOptions() {
    return {
      receiveMode: 'peekLock' as const,
      skipParsingBodyAsJson: true,
      maxAutoLockRenewalDurationInMs: this.#lockRenewalMs,
    };
  }

  #receiver(): ServiceBusReceiver {
    const options = this.#receiverOptions();
    return this.#subscription !== undefined
      ? this.client.createReceiver(this.#topic!, this.#subscription, options)
      : this.client.createReceiver(this.#queue!, options);
  }

  #sessionSettings(name: string): SessionSettings {
    const options = this.#receiverOptions();
    return {
      name,
      budget: this.concurrency,
      maxSessions: this.#maxSessions ?? this.concurrency,
      idleMs: this.#sessionIdleMs,
      logger: this.#logger,
      accept: (abortSignal) =>
        this.#subscription !== undefined
          ? this.client.acceptNextSession(this.#topic!, this.#subscription, {
              ...options,
              abortSignal,
            })
          : this.client.acceptNextSession(this.#queue!, { ...options, abortSignal }),
    };
  }

  /** The `$deadletterqueue` of the queue or subscription (adapters/azure/dlq.ts). */
  async openDeadLetters(): Promise<DeadLetters> {
    // CLI code, loaded on call: a non-literal import keeps it out of function bundles
    const m: typeof import('./dlq.ts') = await import(DLQ_MODULE);
    return m.openServiceBusDeadLetters(this.client, {
      queue: this.#queue,
      topic: this.#topic,
      subscription: this.#subscription,
    });
  }

  async openReplyAddress(): Promise<{ address: string; source: Source }> {
    const name = this.#replyQueue ?? `${REPLY_QUEUE_PREFIX}${globalThis.crypto.randomUUID()}`;
    const options = this.#receiverOptions();
    let source: StreamSource;
    if (this.#replySessions) {
      const sessionId = `cloudmom-${globalThis.crypto.randomUUID()}`;
      // The session lock is this instance's claim on its replies: keep renewing it (7 days).
      const receiver = await this.client.acceptSession(name, sessionId, {
        ...options,
        maxAutoLockRenewalDurationInMs: 7 * 24 * 3600 * 1000,
      });
      this.#replySessionId = sessionId;
      source = new StreamSource(
        receiver,
        `${name} (session ${sessionId})`,
        REPLY_CREDIT,
        this.#logger,
      );
    } else {
      source = new StreamSource(
        this.client.createReceiver(name, options),
        name,
        REPLY_CREDIT,
        this.#logger,
      );
      if (this.#replyQueue !== undefined) {
        // A configured queue may be shared: take only the replies to this instance's requests.
        const own = new BoundedSet(OWN_REQUESTS);
        this.#ownRequests = own;
        source.keep = (m) => m.correlationId !== undefined && own.has(m.correlationId);
      }
    }
    this.#replyAddress = name;
    this.#sources.add(source);
    return { address: name, source };
  }

  async close(): Promise<void> {
    this.#closed = true;
    // The core closed the sources it consumed; these are the ones it never started.
    await Promise.allSettled([...this.#sources].map((s) => s.close()));
    const closing = [...this.#senders.values()].map((e) => e.sender.close());
    this.#senders.clear();
    await Promise.allSettled(closing);
    if (this.#ownsClient) await this.#client?.close().catch(() => {});
  }
}

/** The settle handle of a received message: the native message and how its settlement ends. */
interface Delivery {
  readonly native: ServiceBusReceivedMessage;
  settled: boolean;
  /** Called once the message is settled at the platform (returns the SDK's credit). */
  readonly done: () => void;
}

/** Settles deliveries of one receiver link through its {@link SettleGate}. */
class Settler {
  readonly #receiver: ServiceBusReceiver;
  readonly #gate = new SettleGate();

  constructor(receiver: ServiceBusReceiver) {
    this.#receiver = receiver;
  }

  /** Completes deliveries together (completes may share disposition frames). */
  completeAll(ds: readonly Delivery[]): Promise<void> {
    const todo = ds.filter((d) => !d.settled);
    if (todo.length === 0) return Promise.resolve();
    for (const d of todo) d.settled = true;
    return this.#gate.shared(async () => {
      const results = await Promise.allSettled(
        todo.map((d) => {
          const p = this.#receiver.completeMessage(d.native);
          p.then(d.done, d.done); // each returns its credit as soon as it is settled
          return p;
        }),
      );
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    });
  }

  abandon(d: Delivery): Promise<void> {
    return this.#once(d, () => this.#gate.solo(() => this.#receiver.abandonMessage(d.native)));
  }

  deadLetter(d: Delivery, reason: DeadLetterReason): Promise<void> {
    return this.#once(d, () =>
      this.#gate.solo(() =>
        this.#receiver.deadLetterMessage(d.native, {
          deadLetterReason: reason.code,
          deadLetterErrorDescription: reason.description.slice(0, DEAD_LETTER_TEXT_MAX),
        }),
      ),
    );
  }

  /** Settling twice is harmless: the second call does nothing. */
  async #once(d: Delivery, fn: () => Promise<void>): Promise<void> {
    if (d.settled) return;
    d.settled = true;
    try {
      await fn();
    } finally {
      d.done();
    }
  }
}

/** Settles several deliveries; rejects with the first failure once all were tried. */
async function settleAll(
  ds: readonly Delivery[],
  fn: (d: Delivery) => Promise<void>,
): Promise<void> {
  if (ds.length === 1) return fn(ds[0]!);
  const results = await Promise.allSettled(ds.map(fn));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * A queue or subscription read with `receiver.subscribe` (streaming, no drain per batch),
 * feeding a {@link PushBuffer}. Flow control: `maxConcurrentCalls` = `credit`, and the SDK adds
 * credit back only when `processMessage` resolves, which it does once the message is settled:
 * at most `credit` messages are unsettled (buffered or in the core's hands).
 */
class StreamSource implements Source {
  readonly name: string;
  readonly maxReceive: number;
  /**
   * Completes go out at once: rhea packs the dispositions written in one tick into shared
   * frames by itself, and the core's batching would only add a turn before the credit returns.
   */
  readonly maxAckBatch = 1;
  /** When set, received messages it refuses are given back at once (a shared reply queue). */
  keep: ((m: IncomingMessage) => boolean) | undefined;
  readonly #receiver: ServiceBusReceiver;
  readonly #settler: Settler;
  readonly #credit: number;
  readonly #logger: Logger;
  readonly #buffer = new PushBuffer<IncomingMessage>();
  #subscription: { close(): Promise<void> } | undefined;
  #stopped: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  #watched: AbortSignal | undefined;
  #warnedForeign = false;

  constructor(receiver: ServiceBusReceiver, name: string, credit: number, logger: Logger) {
    this.#receiver = receiver;
    this.#settler = new Settler(receiver);
    this.name = name;
    this.#credit = credit;
    this.maxReceive = credit;
    this.#logger = logger;
  }

  receive(max: number, signal: AbortSignal): Promise<readonly IncomingMessage[]> {
    if (this.#stopped === undefined) {
      if (signal.aborted) return Promise.resolve([]);
      this.#subscription ??= this.#subscribe();
      if (this.#watched !== signal) {
        this.#watched = signal;
        // The core stops: no more credit (what is in flight arrives and is given back on close).
        signal.addEventListener('abort', () => this.#stopReceiving(), { once: true });
      }
    }
    return this.#buffer.take(max, signal);
  }

  #subscribe(): { close(): Promise<void> } {
    return this.#receiver.subscribe(
      {
        processMessage: (native) =>
          new Promise<void>((done) => {
            const d: Delivery = { native, settled: false, done };
            const m = fromReceived(native, { ackId: d, source: this.name });
            replySessions.note(m);
            if (this.keep && !this.keep(m)) {
              this.#giveBack(d, m);
              return;
            }
            if (!this.#buffer.push(m)) void this.#settler.abandon(d).catch(() => {});
          }),
        processError: async (args) => {
          if (this.#stopped) return;
          if (args.errorSource === 'receive') {
            // The SDK keeps retrying the link; the core logs and backs off its receive.
            this.#buffer.fail(args.error);
            return;
          }
          this.#logger.warn('Service Bus receiver error', {
            source: this.name,
            errorSource: args.errorSource,
            error: describeError(args.error),
          });
        },
      },
      { autoCompleteMessages: false, maxConcurrentCalls: this.#credit },
    );
  }

  /** A reply for another instance on a shared reply queue: abandoned, for its owner to take. */
  #giveBack(d: Delivery, m: IncomingMessage): void {
    if (!this.#warnedForeign) {
      this.#warnedForeign = true;
      this.#logger.warn(
        'a reply for another instance reached this one: the reply queue is shared; replies are ' +
          'given back (abandoned) for their requester, which costs a delivery each — use ' +
          'replySessions (a session-enabled queue) to share one reply queue',
        { source: this.name, messageId: m.messageId },
      );
    }
    this.#settler.abandon(d).catch((err: unknown) =>
      this.#logger.warn('giving back a reply for another instance failed; its lock will expire', {
        source: this.name,
        messageId: m.messageId,
        error: describeError(err),
      }),
    );
  }

  #stopReceiving(): Promise<void> {
    this.#stopped ??= (this.#subscription?.close() ?? Promise.resolve()).catch(() => {});
    return this.#stopped;
  }

  ack(ackIds: readonly unknown[]): Promise<void> {
    return this.#settler.completeAll(ackIds as Delivery[]);
  }

  nack(ackId: unknown): Promise<void> {
    return this.#settler.abandon(ackId as Delivery);
  }

  deadLetter(ackId: unknown, reason: DeadLetterReason): Promise<void> {
    return this.#settler.deadLetter(ackId as Delivery, reason);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await this.#stopReceiving();
    // Received after the core stopped taking: given back unrun.
    const rest = this.#buffer.close();
    await settleAll(
      rest.map((m) => m.ackId as Delivery),
      (d) => this.#settler.abandon(d),
    ).catch(() => {});
    await this.#receiver.close().catch(() => {});
  }
}

interface SessionSettings {
  readonly name: string;
  /** Most messages unsettled at once, across sessions (the broker's concurrency). */
  readonly budget: number;
  readonly maxSessions: number;
  readonly idleMs: number;
  readonly logger: Logger;
  /** Accepts the next session with messages (rejects with ServiceTimeout when none came). */
  accept(signal: AbortSignal): Promise<ServiceBusSessionReceiver>;
}

/** One accepted session and the messages of it not settled yet. */
interface SessionState {
  readonly receiver: ServiceBusSessionReceiver;
  readonly settler: Settler;
  /** Received from the platform, not settled at it (buffered, in the core, or held). */
  unsettled: number;
  /**
   * Released by the core unrun (`nack(…, failed = false)`: an earlier message of the session
   * failed, or stopping). Kept locked rather than abandoned — an abandon would count a delivery
   * for a message that never ran — and offered again merged in sequence order with what the
   * session receives next, so the failed one (abandoned, back first) runs before them.
   */
  held: SessionDelivery[];
  /**
   * Messages the next `receiveMessages` asks for: 1 for a session just accepted, doubled (up
   * to SESSION_RECEIVE_MAX) each time a receive got all it asked for, back to 1 when it got
   * fewer. A pending receive holds its count of the budget until it returns (up to `idleMs`),
   * so a session with one message must not hold 32: that would keep the others from being
   * accepted (one message per session ran two sessions at a time).
   */
  ask: number;
}

interface SessionDelivery extends Delivery {
  readonly session: SessionState;
}

/**
 * A session-enabled queue or subscription: accepts sessions (up to SESSION_ACCEPTS at once)
 * while fewer than `maxSessions` are open and the core has room, reads each with
 * `receiveMessages` for no more than the room left (`budget` unsettled in all) — starting at one
 * message and doubling while the session has more — and releases a
 * session after `idleMs` without messages once all of its messages are settled. Every message
 * carries its session id as group key: the core runs a session one message at a time, in order.
 */
class SessionSource implements Source {
  readonly name: string;
  readonly maxReceive: number;
  /**
   * Completes go out at once: rhea packs the dispositions written in one tick into shared
   * frames by itself, and the core's batching would only add a turn before the credit returns.
   */
  readonly maxAckBatch = 1;
  readonly #s: SessionSettings;
  readonly #buffer = new PushBuffer<IncomingMessage>();
  readonly #sessions = new Set<SessionState>();
  readonly #pumps = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  #unsettled = 0;
  #reserved = 0;
  #accepting: Promise<void> | undefined;
  #draining = false;
  #watched: AbortSignal | undefined;
  #wakers: (() => void)[] = [];
  #closed: Promise<void> | undefined;

  constructor(settings: SessionSettings) {
    this.#s = settings;
    this.name = settings.name;
    this.maxReceive = settings.budget;
  }

  receive(max: number, signal: AbortSignal): Promise<readonly IncomingMessage[]> {
    if (!this.#draining) {
      if (signal.aborted) return Promise.resolve([]);
      if (this.#watched !== signal) {
        this.#watched = signal;
        signal.addEventListener('abort', () => this.#drain(), { once: true });
      }
      this.#accepting ??= this.#acceptLoop();
    }
    return this.#buffer.take(max, signal);
  }

  /** The core stopped taking: no new sessions, no new receives. */
  #drain(): void {
    this.#draining = true;
    this.#wake();
  }

  #room(): number {
    return this.#s.budget - this.#unsettled - this.#reserved;
  }

  #wake(): void {
    for (const w of this.#wakers.splice(0)) w();
  }

  #changed(): Promise<void> {
    return new Promise((r) => this.#wakers.push(r));
  }

  async #acceptLoop(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let failed = false;
    try {
      while (!this.#draining && !failed) {
        // each accept in flight will want at least one message of the budget
        if (
          inFlight.size >= SESSION_ACCEPTS ||
          this.#sessions.size + inFlight.size >= this.#s.maxSessions ||
          this.#room() - inFlight.size <= 0
        ) {
          await this.#changed();
          continue;
        }
        const accepted: Promise<void> = this.#acceptOne().then((ok) => {
          if (!ok) failed = true;
        });
        const settle = accepted.finally(() => {
          inFlight.delete(settle);
          this.#wake();
        });
        inFlight.add(settle);
      }
    } finally {
      this.#accepting = undefined;
    }
  }

  /** Accepts one session and starts its pump; false when the source must stop accepting. */
  async #acceptOne(): Promise<boolean> {
    const signal = this.#closing.signal;
    let receiver: ServiceBusSessionReceiver;
    try {
      receiver = await this.#s.accept(signal);
    } catch (err) {
      if (this.#draining || signal.aborted) return false;
      const code = serviceBusCode(err);
      // No session available within the service's timeout: ask again.
      if (code === 'ServiceTimeout' || code === 'SessionCannotBeLocked') return true;
      // Anything else: the core's receive fails, logs and backs off, then starts this again.
      this.#buffer.fail(err);
      return false;
    }
    if (this.#draining || signal.aborted) {
      await receiver.close().catch(() => {});
      return false;
    }
    const session: SessionState = {
      receiver,
      settler: new Settler(receiver),
      unsettled: 0,
      held: [],
      ask: 1,
    };
    this.#sessions.add(session);
    const pump: Promise<void> = this.#pump(session).finally(() => {
      this.#pumps.delete(pump);
      this.#sessions.delete(session);
      this.#wake();
    });
    this.#pumps.add(pump);
    return true;
  }

  async #pump(session: SessionState): Promise<void> {
    const { receiver } = session;
    const signal = this.#closing.signal;
    try {
      while (!this.#draining) {
        const room = this.#room();
        if (room <= 0) {
          await this.#changed();
          continue;
        }
        const n = Math.min(room, session.ask);
        this.#reserved += n;
        let got: ServiceBusReceivedMessage[];
        try {
          got = await receiver.receiveMessages(n, {
            maxWaitTimeInMs: this.#s.idleMs,
            abortSignal: signal,
          });
        } finally {
          this.#reserved -= n;
        }
        session.ask = got.length === n ? Math.min(SESSION_RECEIVE_MAX, session.ask * 2) : 1;
        this.#unsettled += got.length;
        session.unsettled += got.length;
        if (got.length === 0 && session.held.length === 0) {
          if (session.unsettled === 0) break; // idle: release the session for another
          continue;
        }
        const fresh = got.map((native) => this.#delivery(session, native));
        const batch = [...session.held, ...fresh].sort(bySequence);
        session.held = [];
        for (const d of batch) this.#offer(d);
      }
    } catch (err) {
      if (!this.#draining && !signal.aborted)
        this.#s.logger.warn('a Service Bus session receiver failed; its messages come back', {
          source: this.name,
          sessionId: receiver.sessionId,
          error: describeError(err),
        });
    } finally {
      // Held ones go back in order, as do those the core releases while it settles the rest.
      for (;;) {
        for (const d of session.held.splice(0).sort(bySequence))
          await session.settler.abandon(d).catch(() => {});
        if (session.unsettled === 0) break;
        await this.#changed();
      }
      await receiver.close().catch(() => {});
    }
  }

  #delivery(session: SessionState, native: ServiceBusReceivedMessage): SessionDelivery {
    const d: SessionDelivery = {
      native,
      session,
      settled: false,
      done: () => {
        session.unsettled--;
        this.#unsettled--;
        this.#wake();
      },
    };
    return d;
  }

  #offer(d: SessionDelivery): void {
    d.settled = false;
    const m = fromReceived(d.native, { ackId: d, source: this.name });
    replySessions.note(m);
    if (!this.#buffer.push(m)) void d.session.settler.abandon(d).catch(() => {});
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    const bySession = new Map<SessionState, SessionDelivery[]>();
    for (const d of ackIds as SessionDelivery[]) {
      const list = bySession.get(d.session);
      if (list) list.push(d);
      else bySession.set(d.session, [d]);
    }
    const results = await Promise.allSettled(
      [...bySession].map(([session, ds]) => session.settler.completeAll(ds)),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  async nack(ackId: unknown, _delayMs: number, failed: boolean): Promise<void> {
    const d = ackId as SessionDelivery;
    if (failed || this.#draining) return d.session.settler.abandon(d);
    if (d.settled) return;
    d.settled = true; // for the core; still locked at the platform until offered again
    d.session.held.push(d);
    this.#wake();
  }

  deadLetter(ackId: unknown, reason: DeadLetterReason): Promise<void> {
    const d = ackId as SessionDelivery;
    return d.session.settler.deadLetter(d, reason);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#drain();
    // Buffered, never taken by the core: given back unrun, in order.
    const rest = this.#buffer.close().map((m) => m.ackId as SessionDelivery);
    for (const d of rest.sort(bySequence)) await d.session.settler.abandon(d).catch(() => {});
    this.#closing.abort();
    this.#wake();
    // Not the pending accept: the SDK does not abort an attach in flight, and the service may
    // hold it up to its timeout (60 s); a session it still hands over is closed at once.
    await Promise.allSettled([...this.#pumps]);
  }
}

/**
 * Orders settlements on one receiver link. rhea 3.0.5 (under `@azure/service-bus` 7.9) writes
 * the dispositions of consecutive deliveries settled in the same tick as one frame carrying the
 * first one's outcome, and compares outcomes only once a run has two members: a complete
 * followed by an abandon or dead-letter in the same tick completes both (the message is lost),
 * and a dead-letter followed by a complete dead-letters both. Completes may share a frame
 * (same outcome); every other settlement runs alone, after the completes in flight resolved
 * (their frames were written) and before new ones start. Platform translation: it stays here.
 *
 * @example
 * ```ts
 * const gate = new SettleGate();
 * await Promise.all([gate.shared(() => r.completeMessage(a)), gate.solo(() => r.abandonMessage(b))]);
 * ```
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

/** The `code` of a `ServiceBusError` (`MessagingEntityNotFound`, `ServiceBusy`...), if it is one. */
function serviceBusCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; code?: unknown };
  return e.name === 'ServiceBusError' && typeof e.code === 'string' ? e.code : undefined;
}

function bySequence(a: Delivery, b: Delivery): number {
  const x = a.native.sequenceNumber;
  const y = b.native.sequenceNumber;
  if (!x || !y) return 0;
  return x.compare(y);
}

/** An open sender of one destination, and the sends it is in. */
interface Sender {
  readonly sender: ServiceBusSender;
  busy: number;
  /** Closed beyond {@link MAX_SENDERS}: closed once its sends are done. */
  evicted?: boolean;
  /** Makes empty link batches at once ({@link linkBatchMaker}); undefined until one was awaited. */
  makeBatch?: () => ServiceBusMessageBatch;
}

/**
 * A maker of empty link batches like `template` (one `createMessageBatch` gave), made at once
 * instead of awaiting `createMessageBatch` for each, which waits for the link's size every
 * time. That lets a core batch be encoded into link batches in the call that hands it over,
 * so its messages are not kept alive until a later turn, while a caller's burst of publishes
 * goes on (measured in docs/azure.md). It builds on @azure/service-bus 7.x internals: the batch
 * class is constructed `(context, maxSizeInBytes)` and keeps the connection context as
 * `_context`; the batch holds no link, `sendMessages` attaches it. Undefined when a batch made
 * so is not an empty one of the template's size (another SDK version): every link batch is
 * then awaited from `createMessageBatch`, as before.
 *
 * @example
 * ```ts
 * const make = linkBatchMaker(await sender.createMessageBatch());
 * const batch = make ? make() : await sender.createMessageBatch();
 * ```
 */
export function linkBatchMaker(
  template: ServiceBusMessageBatch,
): (() => ServiceBusMessageBatch) | undefined {
  const Batch = template.constructor as new (
    context: unknown,
    maxSizeInBytes: number,
  ) => ServiceBusMessageBatch;
  const context = (template as { _context?: unknown })._context;
  const max = template.maxSizeInBytes;
  if (typeof Batch !== 'function' || context === undefined || typeof max !== 'number')
    return undefined;
  try {
    const made = new Batch(context, max);
    if (made.count !== 0 || made.sizeInBytes !== 0 || made.maxSizeInBytes !== max) return undefined;
    if (typeof made.tryAddMessage !== 'function') return undefined;
  } catch {
    return undefined;
  }
  return () => new Batch(context, max);
}

/** A sent message's outcome: its id is the deduplication id when it had one (Service Bus dedupes by id). */
function sentOutcome(m: OutgoingMessage): SendOutcome {
  return m.deduplicationId === undefined ? SENT : { ok: true, messageId: m.deduplicationId };
}
