/**
 * One receiver link settling more messages than rhea's delivery buffer (2048 per session): the
 * peer keeps sending (each delivery is done once the peer answered its settlement).
 */
import { describe, expect, it } from 'vitest';
import { client, fresh, onPeer } from './helpers.ts';

describe.skipIf(!onPeer)('Service Bus peer: a long-lived receiver link', () => {
  const sb = client();

  it('3,000 messages completed through one subscribe(): all arrive', async () => {
    const q = fresh();
    const sender = sb.createSender(q);
    for (let i = 0; i < 3000; i += 500)
      await sender.sendMessages(
        Array.from({ length: 500 }, (_, k) => ({ body: Buffer.from(String(i + k)) })),
      );
    await sender.close();
    const receiver = sb.createReceiver(q, { receiveMode: 'peekLock' });
    let done = 0;
    const sub = receiver.subscribe(
      {
        processMessage: async (m) => {
          await receiver.completeMessage(m);
          done++;
        },
        processError: async () => {},
      },
      { autoCompleteMessages: false, maxConcurrentCalls: 50 },
    );
    const deadline = Date.now() + 30_000;
    while (done < 3000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await sub.close();
    await receiver.close();
    expect(done).toBe(3000);
  }, 40_000);
});
