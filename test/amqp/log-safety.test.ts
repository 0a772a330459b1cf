/**
 * No message content in any log line on RabbitMQ (see test/log-safety.ts): the marked
 * messages through `AmqpBroker` (publish, `start()`, replies, `request()`, dead-lettering) and
 * through `rmqHandler` (events built from the messages as RabbitMQ holds them), at `warn` and
 * at `debug`, every line of the default JSON logger captured.
 */
import { rmqHandler } from 'cloudmom/amqp';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
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
} from '../log-safety.ts';
import { closeTestConnection, drainAsRmq, rmqEvent, type Topology, topology } from './fixture.ts';

let t: Topology | undefined;
let capture: ReturnType<typeof captureLogs> | undefined;
afterEach(async () => {
  capture?.stop();
  capture = undefined;
  await t?.cleanup();
  t = undefined;
});
afterAll(() => closeTestConnection());

const RETRY = { maxDeliveries: 2, retry: { baseDelayMs: 10, maxDelayMs: 10 } };

describe.each(LEVELS)('at %s, no log line carries the marker', (level) => {
  it('AmqpBroker: publish, start(), reply, request(), dead-letters (schema, handler, undecodable)', async () => {
    t = await topology();
    capture = captureLogs(level);
    const { logger } = capture;
    const consumer = t.broker({ logger, ...RETRY });
    const publisher = t.broker({ logger });
    const liar = t.broker({ logger, codecs: [liarCodec] });
    await runBrokerPath(consumer, publisher, liar);
    await Promise.all([consumer.stop(), publisher.stop(), liar.stop()]);
    const dead = await t.deadLetters();
    expect(dead.map((d) => d.headers.target).sort()).toEqual([...DEAD_TARGETS].sort());
    // the reasons on the dead letters keep the detail the logs may not
    expect(dead.some((d) => String(d.headers.dead_letter_description).includes(MARKER))).toBe(true);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  it('rmqHandler: an aws:rmq event of the marked messages', async () => {
    t = await topology();
    capture = captureLogs(level);
    // no logger option: the default, jsonLogger() at CLOUDMOM_LOG_LEVEL (set by captureLogs)
    const logger = undefined;
    const broker = addHandlers(t.broker({ logger, maxDeliveries: 1 }));
    const liar = t.broker({ logger, codecs: [liarCodec] });
    const n = await publishMarked(broker, liar);
    const records = await drainAsRmq(t.queue);
    expect(records).toHaveLength(n);
    await rmqHandler(broker)(rmqEvent(t.queue, records));
    expect(broker.stats.deadLettered).toBe(DEAD_TARGETS.length);
    await Promise.all([broker.stop(), liar.stop()]);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });
});
