/**
 * The dead-letter queue of an SQS queue, for the CLI's `dlq` commands: the option
 * `deadLetterQueue` (URL `?dlq=`) or the queue's RedrivePolicy target, read as a
 * {@link Source} (short long polls of 1 s; `receive` resolves `[]` once the queue looks empty),
 * its messages redriven to the queue itself.
 */
import type { Message } from '@aws-sdk/client-sqs';
import { InvalidArgumentError } from '../../src/errors.ts';
import type {
  DeadLetterReason,
  DeadLetters,
  IncomingMessage,
  Source,
} from '../../src/transport.ts';
import * as WIRE from '../../src/wire-names.ts';
import { deleteReceived, releaseReceived } from './receive.ts';
import { sqsSdk } from './sdk.ts';
import type { SqsTransport } from './transport.ts';
import { fromSqsMessage } from './wire.ts';

/** Opens the dead-letter queue of `queue` (the broker's own). */
export async function openSqsDeadLetters(
  t: SqsTransport,
  queue: string | undefined,
  visibilityTimeoutSeconds: number,
): Promise<DeadLetters> {
  if (queue === undefined)
    throw new InvalidArgumentError(
      'dead letters: the broker has no queue (sns:// needs ?queue=<the subscribed queue>)',
    );
  const origin = await t.queueUrl(queue);
  const url =
    t.deadLetterQueue !== undefined
      ? await t.queueUrl(t.deadLetterQueue)
      : await t.deadLetterQueueFor(origin);
  const source = new SqsDeadLetterSource(t, url, visibilityTimeoutSeconds);
  return {
    source,
    origin,
    reason,
    copyId: (m) => (m.raw as Message).MessageId ?? m.messageId,
    count: async () => {
      const r = await t.client.send(
        new (sqsSdk().GetQueueAttributesCommand)({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages'],
        }),
      );
      const n = Number(r.Attributes?.ApproximateNumberOfMessages);
      return Number.isFinite(n) ? n : undefined;
    },
    close: async () => {},
  };
}

/** `dead_letter_reason` / `_description` as the core's copy wrote them; none when SQS moved it (maxReceiveCount). */
function reason(m: IncomingMessage): ReturnType<DeadLetters['reason']> {
  const a = (m.raw as Message).MessageAttributes;
  const code = a?.[WIRE.deadLetterReason]?.StringValue;
  if (code === undefined) return undefined;
  const truncated = a?.[WIRE.deadLetterTruncated]?.StringValue;
  return {
    code: code as DeadLetterReason['code'],
    description: a?.[WIRE.deadLetterDescription]?.StringValue ?? '',
    ...(truncated !== undefined ? { truncatedFrom: Number(truncated) } : {}),
  };
}

class SqsDeadLetterSource implements Source {
  readonly name: string;
  readonly maxReceive = 10;
  readonly parallelReceives = 4;
  readonly maxAckBatch = 10;
  readonly #t: SqsTransport;
  readonly #url: string;
  readonly #visibility: number;

  constructor(t: SqsTransport, url: string, visibilityTimeoutSeconds: number) {
    this.#t = t;
    this.#url = url;
    this.#visibility = visibilityTimeoutSeconds;
    this.name = url;
  }

  async receive(max: number, signal: AbortSignal): Promise<IncomingMessage[]> {
    if (signal.aborted) return [];
    const r = await this.#t.client.send(
      new (sqsSdk().ReceiveMessageCommand)({
        QueueUrl: this.#url,
        MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
        WaitTimeSeconds: 1,
        VisibilityTimeout: this.#visibility,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
      { abortSignal: signal },
    );
    return (r.Messages ?? []).map((m) => fromSqsMessage(m, this.#url));
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    if (ackIds.length === 0) return;
    const failed = await deleteReceived(this.#t.client, this.#url, ackIds);
    if (failed.length > 0)
      throw new Error(
        `deleting ${failed.length} of ${ackIds.length} dead letters failed: ${failed[0]!.Code}`,
      );
  }

  async nack(ackId: unknown): Promise<void> {
    await releaseReceived(this.#t.client, this.#url, ackId, 0);
  }

  async close(): Promise<void> {}
}
