/**
 * The conformance fixture for Cloudflare Queues. The suite's handlers are closures in the test
 * process and its brokers are `start()`ed, but a Worker is push-only: the runtime calls
 * `queue()` with batches. So the brokers here are the adapter's own transport
 * (`CloudflareQueueTransport`: envelope, sizes, producer bindings, dead-letter copies) over
 * Miniflare's producer bindings (`getQueueProducer`: real queues in workerd), plus one thing the
 * product does not have: a source that pulls from the test Worker in bridge mode, whose
 * `queue()` holds each message until the test process settles it, and then calls the
 * runtime's own `ack()` / `retry({ delaySeconds })` (the shape of Cloudflare's HTTP pull
 * consumers: lease, ack, retry with a delay). Redelivery, `attempts`, delays and dead-letter
 * queues are workerd's; the receive loop is the core's; only the hop Worker → test process is
 * test scaffolding. `queueHandler` itself is tested inside workerd (entrypoint.test.ts).
 */
import type { Miniflare } from 'miniflare';
import { CloudflareQueueTransport, type QueueBinding } from '../../adapters/cloudflare/broker.ts';
import {
  deadLetterInfo,
  fromBase64,
  fromQueueMessage,
  LIMITS,
  toBase64,
} from '../../adapters/cloudflare/wire.ts';
import { Broker, type BrokerOptions } from '../../src/broker.ts';
import { jsonCodec } from '../../src/codec.ts';
import type { IncomingMessage, Source } from '../../src/transport.ts';
import type { Fixture, FixtureDeadLetter } from '../conformance/suite.ts';
import { QUEUES, type TestWorker, testWorker } from './helpers.ts';

/** How long the bridge Worker holds a message the test process has not settled (ms). */
export const LEASE_MS = 5000;
/** An address the fixture's brokers allow but have no producer binding for. */
export const UNBOUND_REPLY = 'replies-unbound';

interface Pulled {
  lease: string;
  queue: string;
  id: string;
  timestamp: number;
  attempts: number;
  body: unknown;
  kind: 'json' | 'text' | 'bytes';
}

/** Pulls from the bridge Worker; settles through it with the runtime's ack() / retry(). */
export class BridgeSource implements Source {
  readonly name = `${QUEUES.main} (bridge)`;
  readonly maxReceive = 100;
  readonly maxAckBatch = 100;
  readonly #mf: Miniflare;
  #closed = false;

  constructor(mf: Miniflare) {
    this.#mf = mf;
  }

  async #post<T>(path: string, body: unknown): Promise<T> {
    const res = await this.#mf.dispatchFetch(`http://worker${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`bridge ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly IncomingMessage[]> {
    if (this.#closed || signal.aborted) return [];
    const pulled = await this.#post<Pulled[]>('/bridge/pull', { max, waitMs: 250 });
    return pulled.map((p) =>
      fromQueueMessage(
        {
          id: p.id,
          timestamp: new Date(p.timestamp),
          attempts: p.attempts,
          body: p.kind === 'bytes' ? fromBase64((p.body as { base64: string }).base64) : p.body,
        },
        { ackId: p.lease, source: p.queue, raw: p },
      ),
    );
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    await this.#post('/bridge/settle', { acks: ackIds });
  }

  async nack(ackId: unknown, delayMs: number): Promise<void> {
    const delaySeconds = Math.min(LIMITS.maxDelaySeconds, Math.max(0, Math.ceil(delayMs / 1000)));
    await this.#post('/bridge/settle', { retries: [{ lease: ackId, delaySeconds }] });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/** The adapter's transport, plus the bridge source for `start()`. */
class BridgedTransport extends CloudflareQueueTransport {
  readonly #mf: Miniflare;
  constructor(mf: Miniflare, options: ConstructorParameters<typeof CloudflareQueueTransport>[0]) {
    super(options);
    this.#mf = mf;
  }
  async open(): Promise<readonly Source[]> {
    return [new BridgeSource(this.#mf)];
  }
}

/** A broker of the core over the bridged transport (the Broker constructor is protected). */
class BridgedBroker extends Broker {
  constructor(transport: BridgedTransport, options: BrokerOptions) {
    super(transport, options);
  }
}

/** A fresh Miniflare (queues, bridge Worker) per conformance case. */
export async function bridgeFixture(): Promise<Fixture> {
  const w: TestWorker = await testWorker({
    bindings: { MODE: 'bridge', LEASE_MS },
    // Far above the suite's maxDeliveries (3): the core decides when to dead-letter.
    consumer: { maxRetries: 20 },
  });
  const queue = (await w.mf.getQueueProducer('QUEUE')) as unknown as QueueBinding;
  const deadLetterQueue = (await w.mf.getQueueProducer('DEAD_LETTERS')) as unknown as QueueBinding;
  const replies = (await w.mf.getQueueProducer('REPLIES')) as unknown as QueueBinding;
  return {
    broker(options: BrokerOptions = {}) {
      const transport = new BridgedTransport(w.mf, {
        queue,
        deadLetterQueue,
        replyQueues: { [QUEUES.replies]: replies },
      });
      return new BridgedBroker(transport, {
        replyAllowList: [QUEUES.replies, UNBOUND_REPLY],
        ...options,
      });
    },
    async deadLetters(): Promise<FixtureDeadLetter[]> {
      const raw = [...(await w.received(QUEUES.deadLetters)), ...(await w.received(QUEUES.native))];
      return raw.map((r) => {
        const m = fromQueueMessage({ ...r, timestamp: new Date() });
        const info = deadLetterInfo(m.headers);
        return {
          target: m.target,
          body: decodeBody(m),
          reason: { code: info.code, description: info.description },
        };
      });
    },
    async injectRaw(m) {
      // The Cloudflare form of "a message without a target attribute": an envelope without it.
      await queue.send(
        {
          cloudmom: 1,
          attributes: {
            ...(m.contentType ? { content_type: m.contentType } : {}),
            ...(m.target ? { target: m.target } : {}),
          },
          base64: toBase64(m.body),
        },
        { contentType: 'json' },
      );
    },
    failingReplyAddress: () => UNBOUND_REPLY,
    cleanup: () => w.dispose(),
  };
}

function decodeBody(m: IncomingMessage): unknown {
  const type = m.contentType ?? '';
  try {
    if (type.startsWith('application/json')) return jsonCodec.decode(m.body);
    if (type.startsWith('text/')) return new TextDecoder().decode(m.body);
  } catch {
    // as bytes
  }
  return m.body;
}

/** Capabilities of a CloudflareQueueBroker (read from a transport; the binding is never used). */
export function cloudflareCapabilities() {
  const unused: QueueBinding = {
    send: () => Promise.reject(new Error('unused')),
    sendBatch: () => Promise.reject(new Error('unused')),
  };
  return new CloudflareQueueTransport({ queue: unused }).capabilities;
}
