/**
 * No message content in any log line on Kafka (see test/log-safety.ts): the marked messages
 * through `KafkaBroker` (publish, `start()` in a consumer group, replies, `request()` over the
 * reply topic, dead-lettering to `<topic>.dlt`) and through `kafkaHandler` (an MSK event built
 * from the records read back from Kafka), at `warn` and at `debug`, every line of the default
 * JSON logger captured.
 */
import { kafkaHandler } from 'cloudmom/kafka';
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
  until,
} from '../log-safety.ts';
import { Kafka, type ReadRecord, type Topology, toKafkaEvent, topology } from './fixture.ts';

const kafka = new Kafka();
let t: Topology | undefined;
let capture: ReturnType<typeof captureLogs> | undefined;
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  capture?.stop();
  capture = undefined;
  for (const s of stops.splice(0)) await s().catch(() => undefined);
  await t?.cleanup();
  t = undefined;
});
afterAll(() => kafka.close());

async function deadLetters(n: number): Promise<ReadRecord[]> {
  let got: ReadRecord[] = [];
  await until('the dead letters', async () => {
    got = await kafka.read(t!.deadLetterTopic);
    return got.length >= n;
  });
  return got;
}

describe.each(LEVELS)('at %s, no log line carries the marker', (level) => {
  it('KafkaBroker: publish, start(), reply, request(), dead-letters (schema, handler, undecodable)', async () => {
    t = await topology(kafka);
    capture = captureLogs(level);
    const { logger } = capture;
    const consumer = t.broker({
      logger,
      maxDeliveries: 2,
      retry: { baseDelayMs: 10, maxDelayMs: 10 },
    });
    const publisher = t.broker({ logger, groupId: `${t.groupId}-publisher` });
    const liar = t.broker({ logger, groupId: `${t.groupId}-liar`, codecs: [liarCodec] });
    stops.push(
      () => consumer.stop(),
      () => publisher.stop(),
      () => liar.stop(),
    );
    await runBrokerPath(consumer, publisher, liar);
    await Promise.all([consumer.stop(), publisher.stop(), liar.stop()]);
    const dead = await deadLetters(DEAD_TARGETS.length);
    expect(dead.map((d) => d.headers.target).sort()).toEqual([...DEAD_TARGETS].sort());
    expect(dead.some((d) => d.headers.dead_letter_description?.includes(MARKER))).toBe(true);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  it('kafkaHandler: an MSK event of the marked records', async () => {
    t = await topology(kafka);
    capture = captureLogs(level);
    // no logger option: the default, jsonLogger() at CLOUDMOM_LOG_LEVEL (set by captureLogs)
    const logger = undefined;
    const broker = addHandlers(t.broker({ logger, maxDeliveries: 1 }));
    const liar = t.broker({ logger, codecs: [liarCodec] });
    stops.push(
      () => broker.stop(),
      () => liar.stop(),
    );
    const n = await publishMarked(broker, liar);
    let records: ReadRecord[] = [];
    await until('the records', async () => {
      records = await kafka.read(t!.topic);
      return records.length >= n;
    });
    await kafkaHandler(broker)(toKafkaEvent(records, kafka.brokers));
    expect(broker.stats.deadLettered).toBe(DEAD_TARGETS.length);
    await deadLetters(DEAD_TARGETS.length);
    await Promise.all([broker.stop(), liar.stop()]);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });
});
