/**
 * No message content in any log line on Pub/Sub (see test/log-safety.ts), on pstest: the
 * marked messages through `PubSubBroker` (publish, `start()`, replies, `request()` over the
 * reply subscription, dead-lettering) and through `cloudEventHandler` (on the real
 * functions-framework server, binary and structured mode) and `pushHandler` (node:http),
 * delivered from the pstest subscription, at `warn` and at `debug`, every line of the default
 * JSON logger captured.
 */
import { createServer } from 'node:http';
import * as functions from '@google-cloud/functions-framework';
import type { Broker } from 'cloudmom';
import { cloudEventHandler, pushHandler } from 'cloudmom/gcp';
import { afterEach, describe, expect, it } from 'vitest';
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
import { emulatorClient, type Topology, topology } from './fixture.ts';
import { bridge, listen, type Mode, serveFunction } from './http.ts';

const client = emulatorClient();
let capture: ReturnType<typeof captureLogs> | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  capture?.stop();
  capture = undefined;
});

async function world(): Promise<Topology> {
  const t = await topology(client);
  cleanups.push(() => t.cleanup());
  return t;
}
const track = <B extends Broker>(b: B): B => {
  cleanups.push(() => b.stop());
  return b;
};

async function expectDeadLetters(t: Topology): Promise<void> {
  await until('the dead letters', () => t.deadLetters.length >= DEAD_TARGETS.length, 20_000);
  expect(t.deadLetters.map((d) => d.attributes.target).sort()).toEqual([...DEAD_TARGETS].sort());
  expect(t.deadLetters.some((d) => d.attributes.dead_letter_description?.includes(MARKER))).toBe(
    true,
  );
}

let fnCount = 0;

describe.each(LEVELS)('at %s, no log line carries the marker', (level) => {
  it('PubSubBroker: publish, start(), reply, request(), dead-letters (schema, handler, undecodable)', async () => {
    const t = await world();
    capture = captureLogs(level);
    const { logger } = capture;
    const consumer = track(
      t.broker({ logger, maxDeliveries: 2, retry: { baseDelayMs: 10, maxDelayMs: 10 } }),
    );
    const publisher = track(t.broker({ logger, subscription: undefined }));
    const liar = track(t.broker({ logger, subscription: undefined, codecs: [liarCodec] }));
    await runBrokerPath(consumer, publisher, liar);
    await Promise.all([consumer.stop(), publisher.stop(), liar.stop()]);
    await expectDeadLetters(t);
    expectNoMarker(capture.stop(), DEAD_TARGETS.length);
  });

  for (const mode of ['binary', 'structured', 'push'] as const satisfies Mode[]) {
    const name = mode === 'push' ? 'pushHandler' : `cloudEventHandler (${mode} mode)`;
    it(`${name}: the marked messages delivered from the subscription`, async () => {
      const t = await world();
      capture = captureLogs(level);
      // no logger option: the default, jsonLogger() at CLOUDMOM_LOG_LEVEL (set by captureLogs)
      const logger = undefined;
      const broker = track(
        addHandlers(t.broker({ logger, subscription: undefined, maxDeliveries: 1 })),
      );
      const liar = track(t.broker({ logger, subscription: undefined, codecs: [liarCodec] }));
      let url: string;
      if (mode === 'push') {
        const served = await listen(createServer(pushHandler(broker)));
        cleanups.push(() => served.close());
        url = served.url;
      } else {
        const fn = `ls-${fnCount++}`;
        functions.cloudEvent(fn, cloudEventHandler(broker));
        const served = await serveFunction(fn);
        cleanups.push(() => served.close());
        url = served.url;
      }
      const b = bridge(client, t.subscription, url, mode);
      cleanups.push(() => b.stop());
      await publishMarked(broker, liar);
      await expectDeadLetters(t);
      // ok ×2, echo, and the echo's reply (published to the topic, delivered back)
      await until('the acks', () => broker.stats.acked >= 4, 20_000);
      expect(broker.stats.repliesSent).toBe(1);
      await b.stop();
      await Promise.all([broker.stop(), liar.stop()]);
      expectNoMarker(capture.stop(), DEAD_TARGETS.length);
    });
  }
});
