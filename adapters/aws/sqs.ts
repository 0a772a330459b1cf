import type {
  Message,
  MessageAttributeValue,
  SendMessageBatchRequestEntry,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions, INTERNALS } from '../../src/broker.ts';
import { InvalidArgumentError, InvalidMessageError } from '../../src/errors.ts';
import { describeError, type Logger, silentLogger } from '../../src/log.ts';
import type {
  Capabilities,
  DeadLetterReason,
  Deliver,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Transport,
} from '../../src/transport.ts';
import { checkOptionKeys, pick } from '../../src/util.ts';
import { awsErrorName, sqsSdk, toSendError } from './sdk.ts';
import {
  deadLetterAttributes,
  encodeBody,
  fromEnvelope,
  measureWire,
  parseSnsEnvelope,
  put,
  type ReceivedAttributes,
  toIncoming,
  validateWire,
  type WireIn,
  wireAttributes,
  wireBody,
} from './wire.ts';

/**
 * SQS limit on a message and on one `SendMessageBatch` call (bytes): 1 MiB.
 * @example
 * ```ts
 * if (new TextEncoder().encode(JSON.stringify(body)).byteLength > SQS_MAX_BYTES) storeInS3(body);
 * ```
 */
export const SQS_MAX_BYTES = 1024 * 1024;

/**
 * Options of {@link SqsBroker}: those of every broker (`concurrency`, `maxDeliveries`,
 * `replyAllowList`...) plus these.
 *
 * @example
 * ```ts
 * const broker = new SqsBroker({ queue: 'orders', waitTimeSeconds: 20, visibilityTimeoutSeconds: 60 });
 * ```
 */
export interface SqsBrokerOptions extends BrokerOptions {
  /** The queue `start()` consumes and `publish` sends to: a name, a URL or an ARN. Required. */
  queue: string;
  /** Queue `publish` sends to when other than `queue` (name, URL or ARN). Default: `queue`. */
  publishTo?: string;
  /**
   * Where messages that can never succeed go (name, URL or ARN). Default: the `deadLetterTargetArn`
   * of the source queue's RedrivePolicy, looked up once per queue.
   */
  deadLetterQueue?: string;
  /** The SQS client. Default: `new SQSClient({})` (region, credentials, `AWS_ENDPOINT_URL` from the environment), created on first use. */
  client?: SQSClient;
  /** Long-polling wait of each ReceiveMessage, 0–20 s. Default 20. */
  waitTimeSeconds?: number;
  /** Visibility timeout asked on receive, and by which a running handler's lock is extended (heartbeat every half). Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Prefix of the per-instance reply queues `request()` creates (and the default reply allow-list). Default `"cloudmom-reply-"`. */
  replyQueuePrefix?: string;
  /** Most ReceiveMessage calls in flight at once per queue. Default: `ceil(concurrency / 10)`, at most 5. */
  pollers?: number;
}

export const SQS_KEYS = [
  'queue',
  'publishTo',
  'deadLetterQueue',
  'client',
  'waitTimeSeconds',
  'visibilityTimeoutSeconds',
  'replyQueuePrefix',
  'pollers',
] as const;

type SqsOwnOptions = Omit<Pick<SqsBrokerOptions, (typeof SQS_KEYS)[number]>, 'queue'> & {
  queue?: string;
};

/** Where a message received by this transport came from, to settle it. */
interface Receipt {
  readonly queueUrl: string;
  readonly receiptHandle: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True for a FIFO queue name, URL or ARN. */
export function isFifo(queue: string): boolean {
  return queue.endsWith('.fifo');
}

/** `arn:aws:sqs:region:account:name` → its parts; undefined for other strings. */
export function parseQueueArn(arn: string): { account: string; name: string } | undefined {
  const m = /^arn:[\w-]+:sqs:[\w-]*:(\d*):([\w.-]+)$/.exec(arn);
  return m ? { account: m[1]!, name: m[2]! } : undefined;
}

/**
 * The SQS transport: publish (auto-batched by the core), long-polling consumption with
 * visibility heartbeats, retry by visibility change, dead-letter by copy + delete, and a
 * per-instance reply queue for `request()`. Also the receiving half of the SNS broker.
 */
export class SqsTransport implements Transport {
  readonly capabilities: Capabilities;
  readonly #options: SqsOwnOptions;
  #client: SQSClient | undefined;
  readonly #urls = new Map<string, Promise<string>>();
  readonly #dlqs = new Map<string, Promise<string>>();
  readonly #receipts = new WeakMap<IncomingMessage, Receipt>();
  readonly #fifoChains = new Map<string, Promise<void>>();
  readonly #pollers: Poller[] = [];
  readonly #waitTimeSeconds: number;
  readonly #visibility: number;
  readonly #replyPrefix: string;
  #replyQueueUrl: Promise<string> | undefined;
  #logger: Logger = silentLogger;

  constructor(options: SqsOwnOptions, capabilities?: Partial<Capabilities>) {
    this.#options = options;
    const wait = options.waitTimeSeconds ?? 20;
    if (!Number.isInteger(wait) || wait < 0 || wait > 20)
      throw new InvalidArgumentError('waitTimeSeconds must be an integer from 0 to 20');
    const vis = options.visibilityTimeoutSeconds ?? 30;
    if (!Number.isInteger(vis) || vis < 1 || vis > 43_200)
      throw new InvalidArgumentError('visibilityTimeoutSeconds must be an integer from 1 to 43200');
    if (
      options.pollers !== undefined &&
      (!Number.isInteger(options.pollers) || options.pollers < 1)
    )
      throw new InvalidArgumentError('pollers must be a positive integer');
    this.#waitTimeSeconds = wait;
    this.#visibility = vis;
    this.#replyPrefix = options.replyQueuePrefix ?? 'cloudmom-reply-';
    if (!/^[\w-]{1,40}$/.test(this.#replyPrefix))
      throw new InvalidArgumentError(
        'replyQueuePrefix may use letters, digits, "-" and "_" (at most 40)',
      );
    const publishTo = options.publishTo ?? options.queue;
    const fifo = publishTo !== undefined && isFifo(publishTo);
    this.capabilities = {
      name: 'sqs',
      maxMessageBytes: SQS_MAX_BYTES,
      measure: (m) => measureWire(m),
      maxBatchMessages: 10,
      maxBatchBytes: SQS_MAX_BYTES,
      batchLingerMs: 5,
      ordering: fifo,
      maxDelaySeconds: fifo ? 0 : 900,
      defaultReplyAllowList: [`${this.#replyPrefix}*`],
      ...capabilities,
    };
  }

  /** The SQS client (created on first use when none was injected). */
  get client(): SQSClient {
    if (!this.#client) this.#client = this.#options.client ?? new (sqsSdk().SQSClient)({});
    return this.#client;
  }

  /** Set by the broker once the core's logger exists. */
  set logger(logger: Logger) {
    this.#logger = logger;
  }

  validate(message: OutgoingMessage): void {
    validateWire(message, 'SQS');
    const dest = message.destination ?? this.#options.publishTo ?? this.#options.queue;
    if (dest !== undefined && isFifo(dest)) {
      if (message.delaySeconds)
        throw new InvalidMessageError('SQS FIFO queues have no per-message delay (delaySeconds)');
      for (const [k, v] of [
        ['groupKey', message.groupKey],
        ['deduplicationId', message.deduplicationId],
      ] as const)
        if (v !== undefined && !/^[\x21-\x7e]{1,128}$/.test(v))
          throw new InvalidMessageError(
            `${k} on a FIFO queue must be 1–128 printable ASCII characters`,
          );
    }
  }

  /** The URL of a queue given by name, URL or ARN; looked up once and cached. */
  queueUrl(queue: string): Promise<string> {
    if (/^https?:\/\//.test(queue)) return Promise.resolve(queue);
    let url = this.#urls.get(queue);
    if (!url) {
      const arn = parseQueueArn(queue);
      const input = arn
        ? { QueueName: arn.name, QueueOwnerAWSAccountId: arn.account || undefined }
        : { QueueName: queue };
      url = this.client.send(new (sqsSdk().GetQueueUrlCommand)(input)).then((r) => {
        if (!r.QueueUrl) throw new Error(`no URL for queue ${queue}`);
        return r.QueueUrl;
      });
      this.#urls.set(queue, url);
      url.catch(() => this.#urls.delete(queue));
    }
    return url;
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    const dest = batch[0]?.destination ?? this.#options.publishTo ?? this.#options.queue;
    if (dest === undefined) {
      const error = new InvalidArgumentError('no queue to publish to: set the option `queue`');
      return batch.map(() => ({ ok: false, error }));
    }
    return this.sendToQueue(dest, batch);
  }

  /**
   * Sends encoded messages to one queue (one SendMessage, or one SendMessageBatch). Sends to a
   * FIFO queue go one call after the other, so batches cannot overtake each other.
   */
  sendToQueue(queue: string, batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    if (!isFifo(queue)) return this.#sendToQueue(queue, batch);
    const previous = this.#fifoChains.get(queue) ?? Promise.resolve();
    const next = previous.then(() => this.#sendToQueue(queue, batch));
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#fifoChains.set(queue, tail);
    void tail.then(() => {
      if (this.#fifoChains.get(queue) === tail) this.#fifoChains.delete(queue);
    });
    return next;
  }

  async #sendToQueue(queue: string, batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    let url: string;
    try {
      url = await this.queueUrl(queue);
    } catch (err) {
      const error = toSendError(err, `SQS queue ${queue}`);
      return batch.map(() => ({ ok: false, error }));
    }
    const fifo = isFifo(url);
    const sdk = sqsSdk();
    const entries = batch.map((m, i) => toEntry(m, String(i), fifo));
    try {
      if (entries.length === 1) {
        const { Id: _id, ...entry } = entries[0]!;
        const r = await this.client.send(new sdk.SendMessageCommand({ QueueUrl: url, ...entry }));
        return [{ ok: true, messageId: r.MessageId ?? batch[0]!.messageId }];
      }
      const r = await this.client.send(
        new sdk.SendMessageBatchCommand({ QueueUrl: url, Entries: entries }),
      );
      const outcomes: SendOutcome[] = batch.map(() => ({
        ok: false,
        error: toSendError(new Error('no result for this entry'), 'SQS SendMessageBatch'),
      }));
      for (const s of r.Successful ?? []) {
        const i = Number(s.Id);
        if (outcomes[i]) outcomes[i] = { ok: true, messageId: s.MessageId ?? batch[i]!.messageId };
      }
      for (const f of r.Failed ?? []) {
        const i = Number(f.Id);
        if (!outcomes[i]) continue;
        const cause = Object.assign(new Error(f.Message ?? f.Code ?? 'failed'), {
          name: f.Code ?? 'Error',
          $fault: f.SenderFault ? 'client' : 'server',
        });
        outcomes[i] = { ok: false, error: toSendError(cause, `SQS send to ${queue}`) };
      }
      return outcomes;
    } catch (err) {
      if (awsErrorName(err).includes('QueueDoesNotExist')) this.#urls.delete(queue);
      const error = toSendError(err, `SQS send to ${queue}`);
      return batch.map(() => ({ ok: false, error }));
    }
  }

  async consume(deliver: Deliver, options: { concurrency: number }): Promise<void> {
    const queue = this.#options.queue;
    if (queue === undefined)
      throw new InvalidArgumentError('start(): no queue to consume: set the option `queue`');
    const url = await this.queueUrl(queue);
    const pollers = this.#options.pollers ?? Math.min(5, Math.ceil(options.concurrency / 10));
    this.#pollers.push(new Poller(this, url, deliver, options.concurrency, pollers));
  }

  async stopConsuming(): Promise<void> {
    await Promise.all(this.#pollers.map((p) => p.stop()));
  }

  async deadLetter(message: IncomingMessage, reason: DeadLetterReason): Promise<void> {
    const receipt = this.#receipts.get(message);
    const source = receipt?.queueUrl ?? sourceQueueOf(message.raw);
    const dlq = await this.deadLetterQueueFor(source);
    const body = encodeBody(message.body);
    const attrs = deadLetterAttributes(message, body.encoding, reason);
    const fifo = isFifo(dlq);
    await this.client.send(
      new (sqsSdk().SendMessageCommand)({
        QueueUrl: dlq,
        MessageBody: body.text,
        MessageAttributes: toSqsAttributes(attrs),
        MessageGroupId: fifo ? (message.groupKey ?? 'dead-letters') : undefined,
        MessageDeduplicationId: fifo ? dedupId(`dl-${message.messageId}`) : undefined,
      }),
    );
    if (receipt) await this.delete(receipt);
  }

  /** The dead-letter queue URL of a source queue: the option, else its RedrivePolicy (cached). */
  deadLetterQueueFor(source: string | undefined): Promise<string> {
    const configured = this.#options.deadLetterQueue;
    if (configured !== undefined) return this.queueUrl(configured);
    if (source === undefined) {
      return Promise.reject(
        new InvalidArgumentError(
          'no dead-letter queue: set the option `deadLetterQueue` (the message has no source queue)',
        ),
      );
    }
    let dlq = this.#dlqs.get(source);
    if (!dlq) {
      dlq = (async () => {
        const url = await this.queueUrl(source);
        const r = await this.client.send(
          new (sqsSdk().GetQueueAttributesCommand)({
            QueueUrl: url,
            AttributeNames: ['RedrivePolicy'],
          }),
        );
        const policy = r.Attributes?.RedrivePolicy;
        const arn = policy
          ? (JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn
          : undefined;
        if (!arn)
          throw new InvalidArgumentError(
            `queue ${source} has no RedrivePolicy: set the option \`deadLetterQueue\``,
          );
        return this.queueUrl(arn);
      })();
      this.#dlqs.set(source, dlq);
      dlq.catch(() => this.#dlqs.delete(source));
    }
    return dlq;
  }

  async openReplyAddress(deliver: Deliver): Promise<string> {
    const name = `${this.#replyPrefix}${globalThis.crypto.randomUUID()}`;
    const created = this.client
      .send(
        new (sqsSdk().CreateQueueCommand)({
          QueueName: name,
          Attributes: { MessageRetentionPeriod: '3600', SqsManagedSseEnabled: 'true' },
        }),
      )
      .then((r) => r.QueueUrl!);
    this.#replyQueueUrl = created;
    const url = await created;
    this.#urls.set(name, created);
    this.#pollers.push(new Poller(this, url, deliver, 100, 1));
    return name;
  }

  async close(): Promise<void> {
    await this.stopConsuming();
    const reply = this.#replyQueueUrl;
    this.#replyQueueUrl = undefined;
    if (reply) {
      try {
        await this.client.send(new (sqsSdk().DeleteQueueCommand)({ QueueUrl: await reply }));
      } catch (err) {
        this.#logger.warn('could not delete the reply queue', { error: describeError(err) });
      }
    }
  }

  // ---- used by the pollers ----

  get waitTimeSeconds(): number {
    return this.#waitTimeSeconds;
  }
  get visibilityTimeoutSeconds(): number {
    return this.#visibility;
  }
  get log(): Logger {
    return this.#logger;
  }

  /** Turns a received SQS message into the core's message, remembering how to settle it. */
  incoming(queueUrl: string, m: Message): IncomingMessage {
    const msg = fromSqsMessage(m);
    this.#receipts.set(msg, { queueUrl, receiptHandle: m.ReceiptHandle ?? '' });
    return msg;
  }

  receiptOf(m: IncomingMessage): Receipt | undefined {
    return this.#receipts.get(m);
  }

  async delete(r: Receipt): Promise<void> {
    await this.client.send(
      new (sqsSdk().DeleteMessageCommand)({ QueueUrl: r.queueUrl, ReceiptHandle: r.receiptHandle }),
    );
  }

  async changeVisibility(r: Receipt, seconds: number): Promise<void> {
    await this.client.send(
      new (sqsSdk().ChangeMessageVisibilityCommand)({
        QueueUrl: r.queueUrl,
        ReceiptHandle: r.receiptHandle,
        VisibilityTimeout: Math.max(0, Math.min(43_200, seconds)),
      }),
    );
  }
}

/** One long-polling loop set on one queue, bounded by `concurrency` messages in flight. */
class Poller {
  readonly #t: SqsTransport;
  readonly #url: string;
  readonly #deliver: Deliver;
  readonly #concurrency: number;
  #inflight = 0;
  #reserved = 0;
  #stopped = false;
  readonly #abort = new AbortController();
  readonly #loops: Promise<void>[] = [];
  #slotWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(t: SqsTransport, url: string, deliver: Deliver, concurrency: number, loops: number) {
    this.#t = t;
    this.#url = url;
    this.#deliver = deliver;
    this.#concurrency = concurrency;
    for (let i = 0; i < loops; i++) this.#loops.push(this.#loop());
  }

  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#abort.abort();
      this.#wakeSlots();
    }
    await Promise.all(this.#loops);
    if (this.#inflight > 0) await new Promise<void>((r) => this.#idleWaiters.push(r));
  }

  #wakeSlots(): void {
    const w = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const f of w) f();
  }

  async #loop(): Promise<void> {
    const sdk = sqsSdk();
    let failures = 0;
    while (!this.#stopped) {
      const free = this.#concurrency - this.#inflight - this.#reserved;
      if (free <= 0) {
        await new Promise<void>((r) => this.#slotWaiters.push(r));
        continue;
      }
      const n = Math.min(10, free);
      this.#reserved += n;
      let messages: Message[];
      try {
        const r = await this.#t.client.send(
          new sdk.ReceiveMessageCommand({
            QueueUrl: this.#url,
            MaxNumberOfMessages: n,
            WaitTimeSeconds: this.#t.waitTimeSeconds,
            VisibilityTimeout: this.#t.visibilityTimeoutSeconds,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['All'],
          }),
          { abortSignal: this.#abort.signal },
        );
        messages = r.Messages ?? [];
        failures = 0;
      } catch (err) {
        this.#reserved -= n;
        if (this.#stopped) break;
        failures++;
        this.#t.log.error('SQS receive failed; retrying', {
          queue: this.#url,
          error: describeError(err),
        });
        await sleep(Math.min(10_000, 200 * 2 ** Math.min(failures, 6)));
        continue;
      }
      this.#reserved -= n;
      this.#dispatch(messages);
    }
  }

  #dispatch(messages: Message[]): void {
    if (messages.length === 0) return;
    // FIFO: messages of one group in one receive run one after the other.
    const groups = new Map<string, Message[]>();
    const singles: Message[] = [];
    for (const m of messages) {
      const g = m.Attributes?.MessageGroupId;
      if (g === undefined) singles.push(m);
      else {
        const list = groups.get(g);
        if (list) list.push(m);
        else groups.set(g, [m]);
      }
    }
    this.#inflight += messages.length;
    const crashed = (err: unknown) =>
      this.#t.log.error('handling a received message failed', { error: describeError(err) });
    for (const m of singles)
      void this.#handle(m)
        .catch(crashed)
        .finally(() => this.#done());
    for (const list of groups.values()) void this.#handleGroup(list).catch(crashed);
  }

  async #handleGroup(list: Message[]): Promise<void> {
    const t = this.#t;
    // the messages waiting behind the running one keep their lock too
    const waiting = new Set(list.slice(1));
    const vis = t.visibilityTimeoutSeconds;
    const heartbeat =
      waiting.size === 0
        ? undefined
        : setInterval(
            () => {
              for (const m of waiting)
                t.changeVisibility(
                  { queueUrl: this.#url, receiptHandle: m.ReceiptHandle ?? '' },
                  vis,
                ).catch((err: unknown) =>
                  t.log.warn('visibility heartbeat failed', { error: describeError(err) }),
                );
            },
            Math.max(500, (vis * 1000) / 2),
          );
    heartbeat?.unref?.();
    let failed = false;
    try {
      for (const m of list) {
        waiting.delete(m);
        if (failed) {
          // an earlier message of the group failed: give the rest back, in order, untouched
          await t
            .changeVisibility({ queueUrl: this.#url, receiptHandle: m.ReceiptHandle ?? '' }, 0)
            .catch((err: unknown) =>
              t.log.warn('could not release a message', { error: describeError(err) }),
            );
          this.#done();
          continue;
        }
        const ok = await this.#handle(m);
        this.#done();
        if (!ok) failed = true;
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  #done(): void {
    this.#inflight--;
    this.#wakeSlots();
    if (this.#inflight === 0 && this.#stopped) {
      const w = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Delivers one message and settles it by the verdict; true when it was acknowledged. */
  async #handle(m: Message): Promise<boolean> {
    const t = this.#t;
    const incoming = t.incoming(this.#url, m);
    const receipt = t.receiptOf(incoming)!;
    const vis = t.visibilityTimeoutSeconds;
    const heartbeat = setInterval(
      () => {
        t.changeVisibility(receipt, vis).catch((err: unknown) =>
          t.log.warn('visibility heartbeat failed', {
            messageId: incoming.messageId,
            error: describeError(err),
          }),
        );
      },
      Math.max(500, (vis * 1000) / 2),
    );
    heartbeat.unref?.();
    let verdict: Awaited<ReturnType<Deliver>>;
    try {
      verdict = await this.#deliver(incoming);
    } catch (err) {
      verdict = { kind: 'retry', delayMs: 0, error: err };
    } finally {
      clearInterval(heartbeat);
    }
    try {
      if (verdict.kind === 'ack') {
        await t.delete(receipt);
        return true;
      }
      if (verdict.kind === 'retry') {
        await t.changeVisibility(receipt, Math.round(verdict.delayMs / 1000));
        return false;
      }
      await t.deadLetter(incoming, verdict.reason);
      return true;
    } catch (err) {
      t.log.error('settling a message failed; it will come back after its visibility timeout', {
        messageId: incoming.messageId,
        verdict: verdict.kind,
        error: describeError(err),
      });
      return false;
    }
  }
}

function dedupId(s: string): string {
  const clean = s.replace(/[^\x21-\x7e]/g, '_');
  return clean.length > 128 ? clean.slice(0, 128) : clean;
}

function toSqsAttributes(attrs: [string, string][]): Record<string, MessageAttributeValue> {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [k, v] of attrs) out[k] = { DataType: 'String', StringValue: v };
  return out;
}

function toEntry(m: OutgoingMessage, id: string, fifo: boolean): SendMessageBatchRequestEntry {
  return {
    Id: id,
    MessageBody: wireBody(m).text,
    MessageAttributes: toSqsAttributes(wireAttributes(m)),
    DelaySeconds: !fifo && m.delaySeconds ? m.delaySeconds : undefined,
    MessageGroupId: fifo ? (m.groupKey ?? m.messageId) : undefined,
    MessageDeduplicationId: fifo ? dedupId(m.deduplicationId ?? m.messageId) : undefined,
  };
}

/** SDK message attributes reduced to strings. */
function sdkAttributes(
  attrs: Record<string, MessageAttributeValue> | undefined,
): ReceivedAttributes {
  const out: ReceivedAttributes = {};
  if (!attrs) return out;
  for (const [k, v] of Object.entries(attrs)) {
    if (v.StringValue !== undefined) put(out, k, v.StringValue);
    else if (v.BinaryValue !== undefined)
      put(out, k, Buffer.from(v.BinaryValue).toString('base64'));
  }
  return out;
}

/** An SQS message as ReceiveMessage returns it → the core's message (SNS envelopes unwrapped). */
export function fromSqsMessage(m: Message): IncomingMessage {
  const a = m.Attributes ?? {};
  const sent = Number(a.SentTimestamp);
  const base: Omit<WireIn, 'text' | 'attributes' | 'messageId'> = {
    deliveryCount: Number(a.ApproximateReceiveCount) || 1,
    publishedAt: Number.isFinite(sent) && sent > 0 ? new Date(sent) : undefined,
    groupKey: a.MessageGroupId,
    raw: m,
  };
  const attributes = sdkAttributes(m.MessageAttributes);
  const text = m.Body ?? '';
  if (attributes.target === undefined) {
    const env = parseSnsEnvelope(text);
    if (env) return fromEnvelope(env, base);
  }
  return toIncoming({ ...base, text, attributes, messageId: m.MessageId ?? '' });
}

/** The source queue of a message handed in by the Lambda entrypoint (its eventSourceARN). */
function sourceQueueOf(raw: unknown): string | undefined {
  if (raw && typeof raw === 'object') {
    const arn = (raw as { eventSourceARN?: unknown }).eventSourceARN;
    if (typeof arn === 'string' && parseQueueArn(arn)) return arn;
  }
  return undefined;
}

/**
 * A broker on Amazon SQS: publish to a queue (auto-batched, up to 10 messages or 1 MiB per
 * call), consume it with `start()` (long polling, bounded concurrency, visibility heartbeat,
 * delete after success and reply, retry by visibility change, dead-letter by copy with the
 * reason), `request()` over a per-instance reply queue. Standard and FIFO queues (`groupKey` →
 * `MessageGroupId`). For Lambda, pass it to {@link lambdaHandler}.
 *
 * @example
 * ```ts
 * import { SqsBroker } from 'cloudmom/aws';
 * const broker = new SqsBroker({ queue: 'orders' });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * await broker.publish('Hello World!', 'hello');
 * ```
 */
export class SqsBroker extends Broker {
  readonly #transport: SqsTransport;

  constructor(options: SqsBrokerOptions) {
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...SQS_KEYS], 'SqsBroker');
    const [own, core] = pick(options, SQS_KEYS);
    if (typeof own.queue !== 'string' || own.queue === '')
      throw new InvalidArgumentError('SqsBroker: `queue` (a name, URL or ARN) is required');
    const transport = new SqsTransport(own);
    super(transport, core);
    transport.logger = this[INTERNALS].logger;
    this.#transport = transport;
  }

  /** The SQS client (injected, or created on first use). */
  override get client(): SQSClient {
    return this.#transport.client;
  }

  /** URL of a queue given by name, URL or ARN (cached). */
  queueUrl(queue: string): Promise<string> {
    return this.#transport.queueUrl(queue);
  }
}
