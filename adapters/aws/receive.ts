/**
 * The receive side of the AWS transports (see {@link SqsReceive}): what `start()`,
 * `request()` and the CLI's dlq need from SQS beyond sending — one {@link Source} per queue
 * (ReceiveMessage long polls, DeleteMessageBatch, visibility changes), the per-instance reply
 * queue, the dead-letter reader (dlq.ts, loaded on call). Given to the transport by the
 * brokers of `cloudmom/aws`; the function-side brokers of `cloudmom/aws/lambda` leave it out.
 */
import type { BatchResultErrorEntry, Message, SQSClient } from '@aws-sdk/client-sqs';
import { InvalidArgumentError } from '../../src/errors.ts';
import { describeError, silentLogger } from '../../src/log.ts';
import type { BrokerOptions } from '../../src/options.ts';
import type { DeadLetters, IncomingMessage, Source } from '../../src/transport.ts';
import { sqsSdk } from './sdk.ts';
import type { ReceiveOptions, SqsReceive, SqsReceiveFactory, SqsTransport } from './transport.ts';
import { fromSqsMessage } from './wire.ts';

/** The dead-letter reader of the CLI (adapters/aws/dlq.ts). */
const DLQ_MODULE = './dlq.ts';

/** ReceiveMessage asks for every attribute. */
const ALL: ['All'] = ['All'];

/** Most ReceiveMessage calls the core may have in flight per queue, whatever `pollers` says. */
const PARALLEL_RECEIVES_LIMIT = 5;

/** What a queue's source reads from the options (checked). */
interface PollSettings {
  readonly waitTimeSeconds: number;
  readonly visibilityTimeoutSeconds: number;
}

/** The receive side the brokers of `cloudmom/aws` give their transport. */
export const sqsReceive: SqsReceiveFactory = Object.assign(receiveSide, {
  keys: ['waitTimeSeconds', 'visibilityTimeoutSeconds', 'pollers'] as const,
});

function receiveSide(t: SqsTransport, options: ReceiveOptions, core: BrokerOptions): void {
  // the concurrency as the core will take it (its own checks reject bad values)
  const c = core.concurrency;
  const side = new SqsReceiveSide(
    t,
    options,
    typeof c === 'number' && Number.isInteger(c) && c > 0 ? c : 10,
  );
  t.logger = silentLogger;
  t.attach = (context) => {
    t.logger = context.logger;
  };
  t.open = () => side.open();
  t.openReplyAddress = () => side.openReplyAddress();
  t.openDeadLetters = () => side.openDeadLetters();
  const close = t.close.bind(t);
  t.close = async () => {
    await close();
    await side.close();
  };
}

class SqsReceiveSide implements SqsReceive {
  readonly #t: SqsTransport;
  readonly #poll: PollSettings;
  readonly #pollers: number;
  #replyQueueUrl: Promise<string> | undefined;

  constructor(t: SqsTransport, options: Parameters<SqsReceiveFactory>[1], concurrency: number) {
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
    this.#t = t;
    this.#poll = { waitTimeSeconds: wait, visibilityTimeoutSeconds: vis };
    this.#pollers = options.pollers ?? Math.min(5, Math.ceil(concurrency / 10));
  }

  async open(): Promise<readonly Source[]> {
    const t = this.#t;
    const queue = t.queue;
    if (queue === undefined)
      throw new InvalidArgumentError('start(): no queue to consume: set the option `queue`');
    const url = await t.queueUrl(queue);
    return [new SqsSource(t, this.#poll, url, this.#pollers)];
  }

  async openReplyAddress(): Promise<{ address: string; source: Source }> {
    const t = this.#t;
    const name = `${t.replyQueuePrefix}${globalThis.crypto.randomUUID()}`;
    const created = t.client
      .send(
        new (sqsSdk().CreateQueueCommand)({
          QueueName: name,
          Attributes: { MessageRetentionPeriod: '3600', SqsManagedSseEnabled: 'true' },
        }),
      )
      .then((r) => r.QueueUrl!);
    this.#replyQueueUrl = created;
    const url = await created;
    t.knowQueue(name, created);
    return { address: name, source: new SqsSource(t, this.#poll, url, 1) };
  }

  async openDeadLetters(): Promise<DeadLetters> {
    // CLI code, loaded on call: a non-literal import keeps it out of function bundles
    const m: typeof import('./dlq.ts') = await import(DLQ_MODULE);
    return m.openSqsDeadLetters(this.#t, this.#t.queue, this.#poll.visibilityTimeoutSeconds);
  }

  async close(): Promise<void> {
    const reply = this.#replyQueueUrl;
    this.#replyQueueUrl = undefined;
    if (!reply) return;
    try {
      await this.#t.client.send(new (sqsSdk().DeleteQueueCommand)({ QueueUrl: await reply }));
    } catch (err) {
      this.#t.logger.warn('could not delete the reply queue', { error: describeError(err) });
    }
  }
}

/**
 * One SQS queue as a source: ReceiveMessage long polls (up to 10 messages, abortable),
 * DeleteMessageBatch acks, ChangeMessageVisibility nacks (the retry delay; 0 to release),
 * ChangeMessageVisibilityBatch lock extension. The `ackId` is the receipt handle.
 */
class SqsSource implements Source {
  readonly name: string;
  readonly maxReceive = 10;
  readonly parallelReceives: number;
  readonly maxAckBatch = 10;
  readonly extendEveryMs: number;
  readonly #t: SqsTransport;
  readonly #poll: PollSettings;
  readonly #url: string;

  constructor(t: SqsTransport, poll: PollSettings, url: string, parallelReceives: number) {
    this.#t = t;
    this.#poll = poll;
    this.#url = url;
    this.name = url;
    this.parallelReceives = Math.min(parallelReceives, PARALLEL_RECEIVES_LIMIT);
    this.extendEveryMs = Math.max(500, (poll.visibilityTimeoutSeconds * 1000) / 2);
  }

  async receive(max: number, signal: AbortSignal): Promise<IncomingMessage[]> {
    if (signal.aborted) return [];
    const t = this.#t;
    let messages: Message[] | undefined;
    try {
      const r = await t.client.send(
        new (sqsSdk().ReceiveMessageCommand)({
          QueueUrl: this.#url,
          MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
          WaitTimeSeconds: this.#poll.waitTimeSeconds,
          VisibilityTimeout: this.#poll.visibilityTimeoutSeconds,
          MessageAttributeNames: ALL,
          MessageSystemAttributeNames: ALL,
        }),
        { abortSignal: signal },
      );
      messages = r.Messages;
    } catch (err) {
      if (signal.aborted) return [];
      throw err;
    }
    if (!messages || messages.length === 0) return [];
    const out: IncomingMessage[] = new Array(messages.length);
    for (let i = 0; i < messages.length; i++) out[i] = fromSqsMessage(messages[i]!, this.#url);
    return out;
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    if (ackIds.length === 0) return;
    const failed = await deleteReceived(this.#t.client, this.#url, ackIds);
    this.#logFailures('deleting messages failed; they will be redelivered', ackIds, failed);
  }

  async nack(ackId: unknown, delayMs: number, failed: boolean): Promise<void> {
    const seconds = failed ? Math.max(0, Math.min(43_200, Math.round(delayMs / 1000))) : 0;
    await releaseReceived(this.#t.client, this.#url, ackId, seconds);
  }

  async extend(ackIds: readonly unknown[]): Promise<void> {
    const t = this.#t;
    const sdk = sqsSdk();
    const calls: Promise<void>[] = [];
    for (let i = 0; i < ackIds.length; i += 10) {
      const chunk = ackIds.slice(i, i + 10);
      calls.push(
        t.client
          .send(
            new sdk.ChangeMessageVisibilityBatchCommand({
              QueueUrl: this.#url,
              Entries: chunk.map((id, j) => ({
                Id: String(j),
                ReceiptHandle: id as string,
                VisibilityTimeout: this.#poll.visibilityTimeoutSeconds,
              })),
            }),
          )
          .then((r) =>
            this.#logFailures('extending the visibility of messages failed', chunk, r.Failed),
          ),
      );
    }
    await Promise.all(calls);
  }

  async close(): Promise<void> {
    // the core aborts the pending long polls; nothing is held here
  }

  /** One log line for the failed entries of a batch call (codes only: no receipt handles, no content). */
  #logFailures(
    what: string,
    ids: readonly unknown[],
    failed: readonly { Code?: string; SenderFault?: boolean }[] | undefined,
  ): void {
    if (!failed || failed.length === 0) return;
    const codes = [...new Set(failed.map((f) => f.Code ?? 'unknown'))].slice(0, 10);
    this.#t.logger.warn(what, {
      queue: this.#url,
      failed: failed.length,
      of: ids.length,
      codes,
    });
  }
}

/**
 * Deletes received messages by receipt handle (one DeleteMessageBatch, up to 10); resolves
 * the entries SQS refused (none when all were deleted).
 */
export async function deleteReceived(
  client: SQSClient,
  url: string,
  handles: readonly unknown[],
): Promise<readonly BatchResultErrorEntry[]> {
  const r = await client.send(
    new (sqsSdk().DeleteMessageBatchCommand)({
      QueueUrl: url,
      Entries: handles.map((id, i) => ({ Id: String(i), ReceiptHandle: id as string })),
    }),
  );
  return r.Failed ?? [];
}

/** Makes a received message visible again in `seconds` (0: at once). */
export async function releaseReceived(
  client: SQSClient,
  url: string,
  handle: unknown,
  seconds: number,
): Promise<void> {
  await client.send(
    new (sqsSdk().ChangeMessageVisibilityCommand)({
      QueueUrl: url,
      ReceiptHandle: handle as string,
      VisibilityTimeout: seconds,
    }),
  );
}
