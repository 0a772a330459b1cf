/**
 * Reliability on a Kafka of its own (so it can be restarted): 10,000 messages through
 * `KafkaBroker.start()` consumers — one in this process, one in a child process that is
 * killed with SIGKILL mid-stream (a rebalance after its session times out) — while the Kafka
 * process is restarted once. Afterwards: none lost, order per key kept, duplicates counted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Properties } from 'cloudmom';
import { KafkaBroker } from 'cloudmom/kafka';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from '../emulators/harness.ts';
import { ENV_VAR, type KafkaPeer, startKafka } from '../emulators/kafka/kafka.ts';
import { FAST_GROUP, Kafka, uid } from './fixture.ts';

const KEYS = 100;
const ROUNDS = 100; // KEYS × ROUNDS = 10,000 messages
const external = process.env[ENV_VAR];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let peer: KafkaPeer | undefined;
let kafka: Kafka | undefined;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  if (external) return;
  peer = await startKafka({ env: false });
  kafka = new Kafka(peer.endpoint.split(','));
}, 180_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  await kafka?.close();
  await peer?.stop();
}, 60_000);

function worker(settings: object, onLine: (line: string) => void): ChildProcess {
  const child = spawn(
    join(ROOT, 'node_modules/.bin/node'),
    ['--conditions=source', join(ROOT, 'test/kafka/worker.ts'), JSON.stringify(settings)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  return child;
}

it.skipIf(external !== undefined)(
  `10,000 messages, a consumer killed and Kafka restarted: none lost, order per key kept${external ? ` — skipped: ${ENV_VAR} names a Kafka this test cannot restart` : ''}`,
  async () => {
    const brokers = peer!.endpoint.split(',');
    const topic = `rel-${uid()}`;
    const groupId = `${topic}-group`;
    await kafka!.createTopics([topic, `${topic}.dlt`], 6);

    // handled[key] = seqs in the order they were handled, by any consumer
    const handled = new Map<string, number[]>();
    const note = (k: string, s: number) => {
      const l = handled.get(k);
      if (l) l.push(s);
      else handled.set(k, [s]);
    };
    let childHandled = 0;
    let ready = false;
    const child = worker({ brokers, topic, groupId, concurrency: 20 }, (line) => {
      if (line === 'READY') ready = true;
      const m = /^H (\S+) (\d+)$/.exec(line);
      if (m) {
        childHandled++;
        note(m[1]!, Number(m[2]));
      }
    });
    stops.push(async () => child.kill('SIGKILL'));

    const common = {
      brokers,
      topic,
      groupId,
      logger: false as const,
      maxWaitMs: 200,
      group: FAST_GROUP,
      connection: { retryDelay: 250, retries: 20 },
    };
    const local = new KafkaBroker({ ...common, concurrency: 20 });
    stops.push(() => local.stop());
    local.add('rel', async (_p: Properties, body: { k: string; s: number }) => {
      await sleep(Math.random() * 2);
      note(body.k, body.s);
    });
    await local.start();
    for (let i = 0; i < 400 && !ready; i++) await sleep(50);
    expect(ready).toBe(true);

    const publisher = new KafkaBroker({ ...common, groupId: `${groupId}-publisher` });
    stops.push(() => publisher.stop());
    let publishFailures = 0;
    const publishOne = async (k: string, s: number) => {
      for (let attempt = 0; ; attempt++) {
        try {
          await publisher.publish({ k, s }, 'rel', { groupKey: k });
          return;
        } catch (err) {
          publishFailures++;
          if (attempt > 100) throw err;
          await sleep(200);
        }
      }
    };

    let killedAt = -1;
    let restartedAt = -1;
    let restartMs = 0;
    let restarting: Promise<void> | undefined;
    const t0 = Date.now();
    for (let round = 0; round < ROUNDS; round++) {
      // one round: seq `round` of every key; a key's next seq is sent only after this one is acknowledged
      await Promise.all(Array.from({ length: KEYS }, (_, k) => publishOne(`key-${k}`, round)));
      if (round === 30) {
        child.kill('SIGKILL');
        killedAt = round;
      }
      if (round === 60) {
        // restarted while publishing and consuming go on (they fail and retry meanwhile)
        const r0 = Date.now();
        restartedAt = round;
        restarting = peer!.restart().then(() => {
          restartMs = Date.now() - r0;
        });
      }
      await sleep(5);
    }
    await restarting;
    const publishMs = Date.now() - t0;

    const deadline = Date.now() + 90_000;
    const missing = () => {
      let n = 0;
      for (let k = 0; k < KEYS; k++) n += ROUNDS - new Set(handled.get(`key-${k}`) ?? []).size;
      return n;
    };
    while (missing() > 0 && Date.now() < deadline) await sleep(200);
    const total = [...handled.values()].reduce((n, l) => n + l.length, 0);
    const duplicates = total - KEYS * ROUNDS;
    console.log(
      `reliability: ${KEYS * ROUNDS} published in ${publishMs} ms (${publishFailures} publish retries), consumer killed after round ${killedAt}, Kafka restarted after round ${restartedAt} (${restartMs} ms); handled ${total} (${duplicates} duplicates, ${childHandled} by the killed consumer), missing ${missing()}`,
    );
    expect(missing()).toBe(0);
    for (let k = 0; k < KEYS; k++) {
      const firsts: number[] = [];
      const seen = new Set<number>();
      for (const s of handled.get(`key-${k}`)!)
        if (!seen.has(s)) {
          seen.add(s);
          firsts.push(s);
        }
      expect(firsts, `key-${k}`).toEqual(Array.from({ length: ROUNDS }, (_, i) => i));
    }
    expect((await kafka!.read(`${topic}.dlt`)).length).toBe(0);
  },
  240_000,
);
