/**
 * Reliability, after Watermill's TestPubSub: 10,000 messages through `AmqpBroker.start()`
 * consumers on a quorum queue while the RabbitMQ broker is restarted twice (`rabbitmqctl
 * stop_app` / `start_app`: every connection drops, the queues recover from disk) and one of
 * the two consumers is killed (its connection destroyed mid-flight, nothing settled). After
 * it: none lost — each message handled or dead-lettered with its reason — and duplicates
 * counted.
 */
import { execFile } from 'node:child_process';
import type { AmqpBroker } from 'cloudmom/amqp';
import { afterAll, expect, inject, it } from 'vitest';
import { closeTestConnection, topology } from './fixture.ts';

const ctl = inject('amqpCtl');
const TOTAL = Number(process.env.CLOUDMOM_RELIABILITY_MESSAGES ?? 10_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(() => closeTestConnection());

function rabbitmqctl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(
      '/usr/lib/rabbitmq/bin/rabbitmqctl',
      ['-n', ctl!.node, ...args],
      { env: { ...process.env, ...ctl!.env }, timeout: 60_000 },
      (err) => (err ? reject(err) : resolve()),
    ),
  );
}

it.runIf(ctl)(
  `${TOTAL.toLocaleString('en')} messages, the broker restarted twice and a consumer killed once: none lost`,
  async () => {
    const t = await topology({ queueType: 'quorum' });
    let channelsLost = 0;
    const quiet = {
      debug() {},
      info() {},
      warn(m: string) {
        if (m === 'AMQP consumer channel closed; recovering') channelsLost++;
      },
      error() {},
    };
    const options = {
      logger: quiet,
      concurrency: 20,
      maxDeliveries: 10, // drops return in-flight deliveries: quorum queues count those too
      retry: { baseDelayMs: 10, maxDelayMs: 50 },
      connectionOptions: { retryLow: 100, retryHigh: 500, acquireTimeout: 60_000 },
    };
    const handled = new Map<number, number>();
    const poison = (n: number) => n % 1000 === 999; // always fails: dead-lettered with the reason
    let killed = false;
    const consumer = (name: string, mortal: boolean): AmqpBroker =>
      t.broker(options).add('load', async (_p, body: { n: number }) => {
        await sleep(Math.random() * 2);
        if (mortal && killed) throw new Error(`${name} is dead`); // settles nothing: its channel is gone
        if (poison(body.n)) throw new Error(`poison ${body.n}`);
        handled.set(body.n, (handled.get(body.n) ?? 0) + 1);
      });
    const a = consumer('a', true);
    const b = consumer('b', false);
    await Promise.all([a.start(), b.start()]);
    const publisher = t.broker(options);

    const started = Date.now();
    let publishRetries = 0;
    const publishAll = async () => {
      for (let n = 0; n < TOTAL; n += 100) {
        await Promise.all(
          Array.from({ length: Math.min(100, TOTAL - n) }, async (_, i) => {
            for (let attempt = 0; ; attempt++) {
              try {
                await publisher.publish({ n: n + i }, 'load');
                return;
              } catch (err) {
                // a publish cut by a drop may or may not have landed: retried (a duplicate at worst)
                if (attempt > 200) throw err;
                publishRetries++;
                await sleep(100);
              }
            }
          }),
        );
      }
    };
    const events: string[] = [];
    const done = () => handled.size;
    // at most every message but the poison ones is handled: a step whose mark lies beyond that
    // (when the consumers caught up with everything during a restart) runs on the drained queue
    // rather than waiting for ever; a mark not reached in 2 minutes fails the test, saying so
    const ceiling = TOTAL - Array.from({ length: TOTAL }, (_, n) => n).filter(poison).length;
    const chaos = async () => {
      const at = async (count: number) => {
        const mark = Math.min(count, ceiling);
        const until = Date.now() + 120_000;
        while (done() < mark) {
          if (Date.now() > until)
            throw new Error(`chaos: ${done()} handled after 2 minutes, waiting for ${mark}`);
          await sleep(5);
        }
      };
      await at(TOTAL * 0.15);
      events.push(`restart 1 at ${done()}`);
      await rabbitmqctl(['stop_app']);
      await rabbitmqctl(['start_app']);
      await at(done() + TOTAL * 0.1);
      events.push(`consumer a killed at ${done()}`);
      killed = true;
      a.client.unsafeDestroy();
      void a.stop();
      await at(done() + TOTAL * 0.1);
      events.push(`restart 2 at ${done()}`);
      await rabbitmqctl(['stop_app']);
      await rabbitmqctl(['start_app']);
    };
    await Promise.all([publishAll(), chaos()]);
    const expectedDead = Array.from({ length: TOTAL }, (_, n) => n).filter(poison);
    const deadBodies = new Set<number>();
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      for (const d of await t.deadLetters()) deadBodies.add((d.body as { n: number }).n);
      const missing = Array.from({ length: TOTAL }, (_, n) => n).filter(
        (n) => !handled.has(n) && !deadBodies.has(n),
      );
      if (missing.length === 0) break;
      await sleep(250);
    }
    const seconds = (Date.now() - started) / 1000;
    const lost = Array.from({ length: TOTAL }, (_, n) => n).filter(
      (n) => !handled.has(n) && !deadBodies.has(n),
    );
    const duplicates = [...handled.values()].reduce((s, c) => s + (c - 1), 0);
    const dead = await t.deadLetters();
    console.log(
      `amqp reliability: ${TOTAL} messages in ${seconds.toFixed(1)} s (${events.join(', ')}); ` +
        `lost ${lost.length}, handled ${handled.size}, duplicates ${duplicates}, dead-lettered ${deadBodies.size}, publish retries ${publishRetries}, consumer channels lost ${channelsLost}`,
    );
    expect(lost).toEqual([]);
    expect(channelsLost).toBeGreaterThanOrEqual(3); // a and b at the first restart, b at the second
    expect([...deadBodies].filter((n) => !poison(n))).toEqual([]); // only poison was dead-lettered
    expect([...deadBodies].sort((x, y) => x - y)).toEqual(expectedDead);
    for (const d of dead) {
      expect(d.headers.dead_letter_reason).toBe('handler-failed');
      expect(String(d.headers.dead_letter_description)).toMatch(/poison \d+/);
    }
    await b.stop();
    await publisher.stop();
    await t.cleanup();
  },
  600_000,
);
