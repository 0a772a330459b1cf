import { randomUUID } from 'node:crypto';
import { type BrokerOptions, MemoryBroker, MemoryHub } from 'cloudmom';
import { runConformance } from './suite.ts';

runConformance(
  'MemoryBroker',
  async () => {
    const hub = new MemoryHub({ visibilityTimeoutMs: 5_000 });
    const queue = `conformance-${randomUUID()}`;
    let first: MemoryBroker | undefined;
    return {
      broker(options: BrokerOptions = {}) {
        const b = new MemoryBroker({ ...options, hub, queue });
        first ??= b;
        return b;
      },
      async deadLetters() {
        return (first ?? new MemoryBroker({ hub, queue, logger: false })).deadLetters();
      },
      async injectRaw(m) {
        hub.queue(queue).send({
          body: m.body,
          target: m.target as string,
          contentType: m.contentType ?? 'application/json',
          messageId: randomUUID(),
          headers: {},
        });
      },
      failingReplyAddress() {
        // an allowed reply queue that refuses every message: the reply send fails
        const name = `reply.tiny-${randomUUID()}`;
        hub.queue(name, { maxMessageBytes: 4 });
        return name;
      },
      async cleanup() {
        hub.delete(queue);
      },
    };
  },
  {
    capabilities: new MemoryBroker({ hub: new MemoryHub(), logger: false }).capabilities,
    injectRaw: true,
    failingReply: true,
    missingDestination: 'the embedded broker creates queues on first use',
    lockMs: 5000,
  },
);
