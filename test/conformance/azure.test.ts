/**
 * The conformance suite on ServiceBusBroker, against the Service Bus peer (or the namespace in
 * CLOUDMOM_SERVICEBUS_CONNECTION_STRING). Each test gets a fresh queue (the peer creates
 * entities on first use) and reads dead letters back from its `$deadletterqueue` sub-queue
 * with the unmodified SDK.
 */
import { randomUUID } from 'node:crypto';
import { ServiceBusClient, type ServiceBusReceiver } from '@azure/service-bus';
import { type BrokerOptions, bytesCodec, jsonCodec, textCodec } from 'cloudmom';
import { REPLY_QUEUE_PREFIX, ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, inject } from 'vitest';
import { bodyBytes } from '../../adapters/azure/wire.ts';
import { peekCount } from '../azure/peer/helpers.ts';
import { type FixtureDeadLetter, runConformance } from './suite.ts';

const connectionString = inject('serviceBusConnectionString');
const admin = new ServiceBusClient(connectionString);
afterAll(() => admin.close());

/** Decodes a dead-lettered body by its content type, as the core codecs do. */
export function decodeBody(bytes: Uint8Array, contentType: string | undefined): unknown {
  const base = (contentType ?? '').split(';')[0]!.trim();
  try {
    if (base === jsonCodec.contentType) return jsonCodec.decode(bytes);
    if (base === 'text/plain') return textCodec.decode(bytes);
  } catch {
    return bytes;
  }
  return bytesCodec.decode(bytes);
}

/** Session-enabled or not, as the brokers of each variant are configured. */
function options(sessions: boolean, queue: string) {
  // Sessions variant: request() replies also go through sessions, on a shared queue.
  return sessions
    ? { sessions, sessionIdleMs: 100, replyQueue: `${queue}-replies`, replySessions: true }
    : {};
}

function fixture(sessions: boolean) {
  return async () => {
    // `conf-` / `session-conf-`: the peer gives these a 5 s lock (LOCK_MS).
    const queue = `${sessions ? 'session-' : ''}conf-${randomUUID().slice(0, 13)}`;
    const seen: FixtureDeadLetter[] = [];
    let dlq: ServiceBusReceiver | undefined;
    return {
      broker(brokerOptions: BrokerOptions = {}) {
        return new ServiceBusBroker({
          ...brokerOptions,
          connectionString,
          queue,
          ...options(sessions, queue),
        });
      },
      missingDestinationBroker(brokerOptions: BrokerOptions = {}) {
        // `missing-`: an entity the peer never creates (on Azure: one nobody provisioned).
        return new ServiceBusBroker({
          ...brokerOptions,
          connectionString,
          publishTo: `missing-${randomUUID().slice(0, 8)}`,
        });
      },
      failingReplyAddress() {
        // Allowed by default (the per-instance reply prefix) but never created: the reply's
        // send fails with MessagingEntityNotFound.
        return `${REPLY_QUEUE_PREFIX}missing-${randomUUID().slice(0, 8)}`;
      },
      async deadLetters() {
        dlq ??= admin.createReceiver(queue, {
          subQueueType: 'deadLetter',
          receiveMode: 'peekLock',
          skipParsingBodyAsJson: true,
        });
        const got = await dlq.receiveMessages(100, { maxWaitTimeInMs: 150 });
        for (const m of got) {
          seen.push({
            target: m.subject,
            body: decodeBody(bodyBytes(m), m.contentType),
            reason: {
              code: String(m.deadLetterReason ?? ''),
              description: String(m.deadLetterErrorDescription ?? ''),
            },
          });
          await dlq.completeMessage(m);
        }
        return seen;
      },
      async injectRaw(m: { body: Uint8Array; contentType?: string; target?: string }) {
        const sender = admin.createSender(queue);
        await sender.sendMessages({
          body: Buffer.from(m.body),
          contentType: m.contentType,
          ...(m.target === undefined ? {} : { subject: m.target }),
          ...(sessions ? { sessionId: randomUUID() } : {}),
        });
        await sender.close();
      },
      // a session-enabled entity is peeked only through a session: that variant waits past the lock
      ...(sessions ? {} : { pending: () => peekCount(admin, queue, 1) }),
      async cleanup() {
        await dlq?.close();
      },
    };
  };
}

const LOCK_MS = 5000;
/** The capabilities of a broker of each variant, read from the broker itself. */
function capabilities(sessions: boolean) {
  const b = new ServiceBusBroker({
    connectionString,
    logger: false,
    ...options(sessions, 'capabilities'),
  });
  afterAll(() => b.stop());
  return b.capabilities;
}

runConformance('ServiceBusBroker', fixture(false), {
  capabilities: capabilities(false),
  orderingReason:
    'in-order delivery per group key needs a session-enabled entity: see "ServiceBusBroker, sessions" below',
  injectRaw: true,
  missingDestination: true,
  failingReply: true,
  lockMs: LOCK_MS,
  timeScale: 2,
});

// The same suite on a session-enabled queue (`sessions: true`): the group key is the session
// id and each session is handled in order; ungrouped messages are sessions of their own.
// request() uses a shared session-enabled reply queue (`replySessions`), one session per broker.
runConformance('ServiceBusBroker, sessions', fixture(true), {
  capabilities: capabilities(true),
  injectRaw: true,
  missingDestination: true,
  failingReply: true,
  lockMs: LOCK_MS,
  timeScale: 2,
});
