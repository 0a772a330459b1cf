/**
 * No message content in any log line on Service Bus (see test/log-safety.ts), on the peer: the
 * marked messages through `ServiceBusBroker` (publish, `start()`, replies, `request()`,
 * native dead-lettering) and through `azureFunctionHandler` with the plain binding (dead
 * letters to `poisonQueue`) and the SDK-type binding (settled through the receiver), the
 * messages received from the peer and handed over as the Functions host does
 * (test/azure/host.ts), at `warn` and at `debug`, every line of the default JSON logger captured.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import {
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
import type { Broker } from 'cloudmom';
import { azureFunctionHandler, ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import {
  addHandlers,
  captureLogs,
  DEAD_TARGETS,
  expectNoMarker,
  LEVELS,
  liarCodec,
  MARKER,
  publishMarked,
  runBrokerPath,
  T,
} from '../log-safety.ts';
import { actionsFor, hostInput, invocation } from './host.ts';

const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString);
let capture: ReturnType<typeof captureLogs> | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  capture?.stop();
  capture = undefined;
});
afterAll(() => client.close());

const fresh = (prefix: string) => `${prefix}${randomUUID().slice(0, 8)}`;
const track = <B extends Broker>(b: B): B => {
  cleanups.push(() => b.stop());
  return b;
};
function receiver(entity: string, sub?: 'deadLetter'): ServiceBusReceiver {
  const r = client.createReceiver(entity, {
    receiveMode: 'peekLock',
    skipParsingBodyAsJson: true,
    ...(sub ? { subQueueType: sub } : {}),
  });
  cleanups.push(() => r.close());
  return r;
}
async function receive(r: ServiceBusReceiver, n: number): Promise<ServiceBusReceivedMessage[]> {
  const got: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + 10_000;
  while (got.length < n && Date.now() < deadline)
    got.push(...(await r.receiveMessages(n - got.length, { maxWaitTimeInMs: 300 })));
  expect(got).toHaveLength(n);
  return got;
}

/** Dead letters: the native sub-queue's reason fields, or a poison queue's application properties. */
async function expectDeadLetters(
  entity: string,
  targets: readonly string[],
  sub?: 'deadLetter',
): Promise<void> {
  const r = receiver(entity, sub);
  const dead = await receive(r, targets.length);
  for (const d of dead) await r.completeMessage(d);
  expect(dead.map((d) => d.subject).sort()).toEqual([...targets].sort());
  const description = (d: ServiceBusReceivedMessage) =>
    String(sub ? d.deadLetterErrorDescription : d.applicationProperties?.dead_letter_description);
  expect(dead.some((d) => description(d).includes(MARKER))).toBe(true);
}

describe.each(LEVELS)('at %s, no log line carries the marker', (level) => {
  it('ServiceBusBroker: publish, start(), reply, request(), dead-letters (schema, handler, undecodable)', async () => {
    const queue = fresh('ls-');
    capture = captureLogs(level);
    const { logger } = capture;
    const common = { connectionString, logger };
    const consumer = track(
      new ServiceBusBroker({
        ...common,
        queue,
        maxDeliveries: 2,
        retry: { baseDelayMs: 10, maxDelayMs: 10 },
      }),
    );
    const publisher = track(new ServiceBusBroker({ ...common, publishTo: queue }));
    const liar = track(new ServiceBusBroker({ ...common, publishTo: queue, codecs: [liarCodec] }));
    await runBrokerPath(consumer, publisher, liar);
    await Promise.all([consumer.stop(), publisher.stop(), liar.stop()]);
    await expectDeadLetters(queue, DEAD_TARGETS, 'deadLetter');
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  it('azureFunctionHandler, plain binding without poisonQueue: the failed invocation and its error carry no content', async () => {
    const queue = fresh('ls-in-');
    capture = captureLogs(level);
    const common = { connectionString, publishTo: queue };
    const broker = track(addHandlers(new ServiceBusBroker({ ...common, maxDeliveries: 1 })));
    const liar = track(new ServiceBusBroker({ ...common, codecs: [liarCodec] }));
    const n = await publishMarked(broker, liar);
    const r = receiver(queue);
    const msgs = await receive(r, n);
    const err = await azureFunctionHandler(broker)(
      hostInput(msgs, 'many', 'binary'),
      invocation(msgs, 'many'),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    for (const m of msgs) await r.abandonMessage(m); // the host abandons a failed invocation
    // the host logs a failed invocation's error: it must not quote the messages either
    expect(err).toBeInstanceOf(Error);
    expect(inspect(err, { depth: 10 })).not.toContain(MARKER);
    await Promise.all([broker.stop(), liar.stop()]);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  for (const binding of ['plain', 'plain-binary', 'sdk'] as const) {
    // the plain binding with the default dataType hands over text: broken JSON reaches the
    // handler as a string (nothing to dead-letter); with dataType 'binary' it is undecodable
    const deadTargets = DEAD_TARGETS.filter((t) => binding !== 'plain' || t !== T.json);
    it(`azureFunctionHandler, ${binding} binding: a batch of the marked messages`, async () => {
      const queue = fresh('ls-in-');
      const poisonQueue = fresh('ls-poison-');
      capture = captureLogs(level);
      // no logger option: the default, jsonLogger() at CLOUDMOM_LOG_LEVEL (set by captureLogs)
      const logger = undefined;
      const common = { connectionString, publishTo: queue, logger };
      const broker = track(
        addHandlers(
          new ServiceBusBroker({
            ...common,
            maxDeliveries: 1,
            ...(binding === 'sdk' ? {} : { poisonQueue }),
          }),
        ),
      );
      const liar = track(new ServiceBusBroker({ ...common, codecs: [liarCodec] }));
      const n = await publishMarked(broker, liar);
      const r = receiver(queue);
      const msgs = await receive(r, n);
      const handler = azureFunctionHandler(broker);
      if (binding !== 'sdk') {
        const dataType = binding === 'plain' ? 'string' : 'binary';
        await handler(hostInput(msgs, 'many', dataType), invocation(msgs, 'many'));
        for (const m of msgs) await r.completeMessage(m); // the host completes after success
      } else {
        await handler({ messages: msgs, actions: actionsFor(r) }, invocation(msgs, 'many'));
      }
      expect(broker.stats.deadLettered).toBe(deadTargets.length);
      await Promise.all([broker.stop(), liar.stop()]);
      if (binding === 'sdk') await expectDeadLetters(queue, deadTargets, 'deadLetter');
      else await expectDeadLetters(poisonQueue, deadTargets);
      expectNoMarker(capture.stop(), deadTargets.length);
    });
  }
});
