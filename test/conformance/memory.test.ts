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
      async cleanup() {
        hub.delete(queue);
      },
    };
  },
  { maxMessageBytes: 1024 * 1024, ordering: true, delay: true, injectRaw: true },
);
