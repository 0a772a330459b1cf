/**
 * The conformance suite on ServiceBusBroker, against the Service Bus peer (or the namespace in
 * CLOUDMOM_SERVICEBUS_CONNECTION_STRING). Each test gets a fresh queue (the peer creates
 * entities on first use) and reads dead letters back from its `$deadletterqueue` sub-queue
 * with the unmodified SDK.
 */
import { randomUUID } from 'node:crypto';
import { ServiceBusClient, type ServiceBusReceiver } from '@azure/service-bus';
import { type BrokerOptions, bytesCodec, jsonCodec, textCodec } from 'cloudmom';
import { ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, inject } from 'vitest';
import { bodyBytes } from '../../adapters/azure/wire.ts';
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

function fixture(sessions: boolean) {
  return async () => {
    const queue = `${sessions ? 'session-' : ''}conf-${randomUUID().slice(0, 13)}`;
    const seen: FixtureDeadLetter[] = [];
    let dlq: ServiceBusReceiver | undefined;
    return {
      broker(options: BrokerOptions = {}) {
        return new ServiceBusBroker({
          ...options,
          connectionString,
          queue,
          // Sessions variant: request() replies also go through sessions, on a shared queue.
          ...(sessions
            ? { sessions, sessionIdleMs: 100, replyQueue: `${queue}-replies`, replySessions: true }
            : {}),
        });
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
      async cleanup() {
        await dlq?.close();
      },
    };
  };
}

runConformance('ServiceBusBroker', fixture(false), {
  maxMessageBytes: 256 * 1024,
  ordering:
    'in-order delivery per group key needs a session-enabled entity: see "ServiceBusBroker, sessions" below',
  delay: true,
  injectRaw: true,
  timeScale: 2,
});

// The same suite on a session-enabled queue (`sessions: true`): the group key is the session
// id and each session is handled in order; ungrouped messages are sessions of their own.
// request() uses a shared session-enabled reply queue (`replySessions`), one session per broker.
runConformance('ServiceBusBroker, sessions', fixture(true), {
  maxMessageBytes: 256 * 1024,
  ordering: true,
  delay: true,
  injectRaw: true,
  timeScale: 2,
});
