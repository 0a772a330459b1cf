/**
 * The README's Azure block, run as written (`node --conditions=source`, a child process)
 * against the Service Bus peer (or the namespace of `CLOUDMOM_SERVICEBUS_CONNECTION_STRING`):
 * the broker reads `SERVICEBUS_CONNECTION_STRING`. The test creates the block's subscription
 * (`calc/Subscriptions/sum`) before it runs, as infra/azure does on Azure. The block's
 * `app.serviceBusTopic(...)` registers the function (outside a Functions host, @azure/functions
 * only records it); the handler runs through a real Functions host in function.test.ts.
 */
import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runBlock, runnableBlock } from '../../scripts/doc-blocks.ts';

const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString, {
  retryOptions: { maxRetries: 1, timeoutInMs: 10_000 },
});
afterAll(() => client.close());
const block = runnableBlock('azure');

/** Everything on `calc/sum` now (received and completed). */
async function drainSum(): Promise<unknown[]> {
  const r = client.createReceiver('calc', 'sum');
  try {
    const ms = await r.receiveMessages(50, { maxWaitTimeInMs: 500 });
    for (const m of ms) await r.completeMessage(m);
    return ms.map((m) => m.body);
  } finally {
    await r.close();
  }
}

describe('README: Azure', () => {
  it(`README.md:${block.line} runs as written against Service Bus: the reply arrives, it exits`, async () => {
    await drainSum(); // opens (on the peer: creates) the subscription, and empties it

    const run = await runBlock(block.path, { SERVICEBUS_CONNECTION_STRING: connectionString });
    expect(run.code, `exit ${run.code} ${run.signal ?? ''}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toBe('{ sum: 3 }\n');
    // the block's publish and its request were both handled and completed
    expect(await drainSum()).toEqual([]);
  }, 90_000);
});
