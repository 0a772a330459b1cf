/**
 * The dead-letter sub-queue (`$deadletterqueue`) of a Service Bus queue or subscription, for
 * the CLI's `dlq` commands: read in peek-lock with `receiveMessages` (waits up to 1 s; `[]`
 * once it is empty), completed on ack, abandoned on nack. Dead letters go back to the queue,
 * or to the topic of a subscription (every subscription whose filter matches sees them again).
 */
import type {
  ServiceBusClient,
  ServiceBusReceivedMessage,
  ServiceBusReceiver,
} from '@azure/service-bus';
import { InvalidArgumentError } from '../../src/errors.ts';
import type {
  DeadLetterReason,
  DeadLetters,
  IncomingMessage,
  Source,
} from '../../src/transport.ts';
import { fromReceived } from './wire.ts';

/** Application properties Service Bus sets on dead-lettering (dropped on redrive). */
const MARKERS = ['DeadLetterReason', 'DeadLetterErrorDescription'] as const;

/** Opens the dead-letter sub-queue of the broker's queue, or of its topic subscription. */
export async function openServiceBusDeadLetters(
  client: ServiceBusClient,
  entity: { queue?: string; topic?: string; subscription?: string },
): Promise<DeadLetters> {
  const options = {
    subQueueType: 'deadLetter' as const,
    receiveMode: 'peekLock' as const,
    skipParsingBodyAsJson: true,
  };
  let receiver: ServiceBusReceiver;
  let origin: string;
  if (entity.subscription !== undefined && entity.topic !== undefined) {
    receiver = client.createReceiver(entity.topic, entity.subscription, options);
    origin = entity.topic;
  } else if (entity.queue !== undefined) {
    receiver = client.createReceiver(entity.queue, options);
    origin = entity.queue;
  } else
    throw new InvalidArgumentError(
      'dead letters: the broker has no queue or subscription (servicebus://<namespace>/<queue> or /<topic>/<subscription>)',
    );
  const source = new DeadLetterSource(receiver, `${receiver.entityPath}`);
  return {
    source,
    origin,
    reason,
    markers: MARKERS,
    close: () => receiver.close(),
  };
}

function reason(m: IncomingMessage): DeadLetterReason | undefined {
  const native = m.raw as ServiceBusReceivedMessage;
  const code = native.deadLetterReason;
  if (code === undefined) return undefined;
  return {
    code: code as DeadLetterReason['code'],
    description: native.deadLetterErrorDescription ?? '',
  };
}

class DeadLetterSource implements Source {
  readonly name: string;
  readonly maxReceive = 100;
  readonly maxAckBatch = 100;
  readonly #receiver: ServiceBusReceiver;
  /** Messages in hand, by lock token (the ackId). */
  readonly #held = new Map<string, ServiceBusReceivedMessage>();

  constructor(receiver: ServiceBusReceiver, name: string) {
    this.#receiver = receiver;
    this.name = name;
  }

  async receive(max: number, signal: AbortSignal): Promise<IncomingMessage[]> {
    if (signal.aborted) return [];
    const got = await this.#receiver.receiveMessages(Math.max(1, Math.min(this.maxReceive, max)), {
      maxWaitTimeInMs: 1000,
      abortSignal: signal,
    });
    return got.map((native) => {
      const ackId = native.lockToken ?? globalThis.crypto.randomUUID();
      this.#held.set(ackId, native);
      return fromReceived(native, { ackId, source: this.name });
    });
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    const results = await Promise.allSettled(
      ackIds.map((id) => this.#settle(id, (m) => this.#receiver.completeMessage(m))),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0)
      throw new Error(`completing ${failed.length} of ${ackIds.length} dead letters failed`, {
        cause: failed[0]!.reason,
      });
  }

  async nack(ackId: unknown): Promise<void> {
    await this.#settle(ackId, (m) => this.#receiver.abandonMessage(m));
  }

  async #settle(
    ackId: unknown,
    fn: (m: ServiceBusReceivedMessage) => Promise<void>,
  ): Promise<void> {
    const m = this.#held.get(ackId as string);
    if (m === undefined) return;
    this.#held.delete(ackId as string);
    await fn(m);
  }

  async close(): Promise<void> {
    await this.#receiver.close();
  }
}
