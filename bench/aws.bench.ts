/**
 * AWS benchmarks (issue 3):
 * - P1: Lambda SQS dispatch, 10-record batches, JSON bodies, trivial handler, no network:
 *   `lambdaHandler` vs a hand-written loop over `event.Records`, and vs Powertools
 *   `BatchProcessor` + `processPartialResponse` under middy.
 * - P2: cold start of the esbuild-bundled entrypoint (`cloudmom/aws/lambda`, AWS SDK external,
 *   as on Lambda): a fresh Node process importing it and invoking it once, vs the same for a
 *   bare handler; and the bundle bytes of cloudmom's own code.
 * - P3: SQS publish throughput against moto and fauxqs: a `publish` per message (the core
 *   batches them) vs one SendMessage per message, and vs sqs-producer `send(array)`; and one
 *   `publishBatch(array)` vs sqs-producer `send(array)` (the same shape: one call, N messages);
 *   and the limit: raw `SendMessageBatch` calls of 10 by hand, all at once — against one
 *   SendMessage each (the emulator's ceiling for any batching client) and against `publish`.
 *   Every anchor sends the attributes cloudmom sends (target, content_type) and a message_id.
 *   A warm-up round, then interleaved rounds; each broker side keeps its first broker
 *   (bench/rounds.ts `keepFirst`). Each round has a fresh queue (the earlier rounds' deleted).
 * Both emulators run in processes of their own (fauxqs since 2026-12-03: in this process it
 * charged the client's side for the emulator's CPU, which no SQS client shares).
 * - P7: SQS consume, draining 2,000 messages: `SqsBroker.start()` (the core's receive loop over
 *   ReceiveMessage(10) + DeleteMessageBatch, concurrency 10) vs a hand-written
 *   ReceiveMessage(10) + DeleteMessageBatch loop (the limit), on moto and fauxqs; the median of
 *   interleaved rounds with the spread; and vs sqs-consumer (`handleMessageBatch`, batchSize 10:
 *   one batch of 10 in hand at a time, the same concurrency).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { build } from 'esbuild';
import { Consumer as SqsConsumer } from 'sqs-consumer';
import { Producer } from 'sqs-producer';
import { lambdaHandler, SqsBroker, type SqsEvent } from '../adapters/aws/index.ts';
import { startFauxqsProcess } from '../test/emulators/aws/fauxqs.ts';
import { awsClientConfig, startMoto } from '../test/emulators/aws/moto.ts';
import { cacheDir, ROOT } from '../test/emulators/harness.ts';
import { interleave, keepFirst, ratioRow, since } from './rounds.ts';
import { events, handLoop, QUEUE_ARN, record } from './sqs-events.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const context: any = {
  functionName: 'bench',
  awsRequestId: 'bench',
  getRemainingTimeInMillis: () => 30_000,
};

let sink = 0;
const trivial = (body: { id: number }) => {
  sink += body.id;
};

/**
 * P3 rounds: 9 (5 until 2026-12-03, when two runs of unchanged code read `publishBatch` on
 * fauxqs at 0.84× and 1.07× the raw loop, each with a spread of 0.65–1.70).
 */
const P3_ROUNDS = Number(process.env.BENCH_P3_ROUNDS ?? 9);
/**
 * fauxqs rounds take ~0.1–0.15 s a side (moto's ~1.3 s), so they swing more: 15 of them, for
 * ~15 s more.
 */
const P3_ROUNDS_FAUXQS = Number(process.env.BENCH_P3_ROUNDS_FAUXQS ?? 15);
// For looking at one P3 row: BENCH_P3_N_MOTO / BENCH_P3_N_FAUXQS set the messages per round
// (default 1,000), BENCH_P3_SKIP_MOTO=1 runs only the fauxqs half (~40 s instead of ~2 min).

const P7_ROUNDS = Number(process.env.BENCH_P7_ROUNDS ?? 3);
const P1_ROUNDS = Number(process.env.BENCH_P1_ROUNDS ?? 21);
/** Passes over the 2,000 events per run: 100k records, ~50–250 ms. */
const P1_PASSES = 5;

/** Records per CPU second of `invoke` over `events` (rounds interleaved by the caller). */
async function rate(
  invoke: (e: SqsEvent) => Promise<unknown>,
  events: SqsEvent[],
): Promise<number> {
  // CPU time of this process: no I/O here, and other processes' load disturbs it less
  const c0 = process.cpuUsage();
  for (let pass = 0; pass < P1_PASSES; pass++) for (const e of events) await invoke(e);
  const c = process.cpuUsage(c0);
  return (P1_PASSES * events.length * 10) / ((c.user + c.system) / 1e6);
}

async function p1(): Promise<BenchRow[]> {
  const batch = events(2_000);

  const broker = new SqsBroker({ queue: QUEUE_ARN, logger: false });
  broker.add('orders', (_p, body) => trivial(body));
  const ours = lambdaHandler(broker);

  const handlers: Record<string, (body: any) => void> = { orders: trivial };
  const hand = handLoop(handlers);

  const processor = new BatchProcessor(EventType.SQS);
  const powertools = middy(async (event: SqsEvent, ctx: any) =>
    processPartialResponse(
      event as any,
      async (r: any) => {
        const h = handlers[r.messageAttributes.target?.stringValue ?? ''];
        if (h) await h(JSON.parse(r.body));
      },
      processor,
      { context: ctx },
    ),
  );

  const runs = {
    ours: () => rate((e) => ours(e, context), batch),
    hand: () => rate(hand, batch),
    powertools: () => rate((e) => powertools(e, context), batch),
  };
  const got = await interleave(runs, P1_ROUNDS, {
    warmup: 3,
    log: 'P1 records/CPU-s',
    collect: false, // a forced full GC before a 100 ms run measures the GC's aftermath, not dispatch
  });
  if (sink === 0) throw new Error('handlers did not run');
  const name = 'Lambda SQS dispatch, 10-record batches, JSON, trivial handler';
  return [
    ratioRow({
      id: 'P1',
      case: name,
      unit: 'records/CPU-s',
      ours: got.ours,
      anchor: got.hand,
      anchorName: 'hand-written loop over event.Records',
      goal: ['≥', 0.9],
    }),
    ratioRow({
      id: 'P1',
      case: name,
      unit: 'records/CPU-s',
      ours: got.ours,
      anchor: got.powertools,
      anchorName: 'Powertools BatchProcessor + processPartialResponse (middy)',
      goal: ['≥', 2],
    }),
  ];
}

async function p2(): Promise<BenchRow[]> {
  const dir = cacheDir('bench-aws');
  const src = join(dir, 'src');
  mkdirSync(src, { recursive: true });
  writeFileSync(
    join(src, 'cloudmom.ts'),
    // the recommended Lambda entry: cloudmom/aws/lambda (no receive loop, no request())
    `import { SqsBroker, lambdaHandler } from ${JSON.stringify(join(ROOT, 'adapters/aws/lambda.ts'))};
const broker = new SqsBroker({ queue: process.env.QUEUE ?? ${JSON.stringify(QUEUE_ARN)}, logger: false });
let sink = 0;
broker.add('orders', (_p, body) => { sink += body.id; });
export const handler = lambdaHandler(broker);
`,
  );
  writeFileSync(
    join(src, 'bare.ts'),
    `let sink = 0;
const handlers: Record<string, (b: any) => void> = { orders: (b) => { sink += b.id; } };
export const handler = async (event: any) => {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const r of event.Records) {
    try {
      const h = handlers[r.messageAttributes.target?.stringValue ?? ''];
      if (h) await h(JSON.parse(r.body));
    } catch { batchItemFailures.push({ itemIdentifier: r.messageId }); }
  }
  return { batchItemFailures };
};
`,
  );
  const sizes: Record<string, { total: number; ours: number }> = {};
  for (const name of ['cloudmom', 'bare']) {
    const result = await build({
      entryPoints: [join(src, `${name}.ts`)],
      outfile: join(dir, `${name}.mjs`),
      bundle: true,
      minify: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      conditions: ['source'],
      external: ['@aws-sdk/*'], // provided by the Lambda runtime
      metafile: true,
      logLevel: 'silent',
    });
    const out = Object.values(result.metafile.outputs)[0]!;
    let ours = 0;
    for (const [file, info] of Object.entries(out.inputs))
      if (/(^|\/)(src|adapters)\//.test(file) && !file.includes('node_modules'))
        ours += info.bytesInOutput;
    sizes[name] = { total: out.bytes, ours };
  }
  const event = { Records: Array.from({ length: 10 }, (_, i) => record(i)) };
  writeFileSync(join(dir, 'event.json'), JSON.stringify(event));
  const probe = (name: string) => `
const t0 = performance.now();
const { handler } = await import(${JSON.stringify(join(dir, `${name}.mjs`))});
const event = JSON.parse(await (await import('node:fs/promises')).readFile(${JSON.stringify(join(dir, 'event.json'))}, 'utf8'));
const r = await handler(event, { getRemainingTimeInMillis: () => 3000, awsRequestId: 'x' });
if (!r || r.batchItemFailures.length !== 0) throw new Error('bad answer ' + JSON.stringify(r));
process.stdout.write(String(performance.now() - t0));
`;
  const node = process.execPath;
  const once = (name: string) => {
    const t0 = performance.now();
    const r = spawnSync(node, ['--input-type=module', '-e', probe(name)], { encoding: 'utf8' });
    const wall = performance.now() - t0;
    if (r.status !== 0) throw new Error(`cold start probe ${name} failed: ${r.stderr}`);
    return { wall, inProcess: Number(r.stdout) };
  };
  const samples: Record<string, { wall: number[]; inProcess: number[] }> = {
    cloudmom: { wall: [], inProcess: [] },
    bare: { wall: [], inProcess: [] },
  };
  once('cloudmom');
  once('bare');
  for (let i = 0; i < 25; i++)
    for (const name of ['cloudmom', 'bare']) {
      const s = once(name);
      samples[name]!.wall.push(s.wall);
      samples[name]!.inProcess.push(s.inProcess);
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ours = median(samples.cloudmom!.wall);
  const bare = median(samples.bare!.wall);
  const oursIn = median(samples.cloudmom!.inProcess);
  const bareIn = median(samples.bare!.inProcess);
  const round1 = (n: number) => Math.round(n * 10) / 10;
  return [
    {
      id: 'P2',
      case: 'cold start: new Node process, import bundle + first invoke (10 records)',
      value: round1(ours),
      unit: 'ms',
      anchor: 'bare handler, same bundling',
      anchorValue: round1(bare),
      ratio: ours / bare,
      goal: '≤ 1.2',
      met: ours / bare <= 1.2,
    },
    {
      id: 'P2',
      case: 'cold start, in-process part only: import + first invoke',
      value: round1(oursIn),
      unit: 'ms',
      anchor: 'bare handler',
      anchorValue: round1(bareIn),
      ratio: oursIn / bareIn,
    },
    {
      id: 'P2',
      case: `bundle size of cloudmom's own code (minified; whole bundle with middy ${sizes.cloudmom!.total.toLocaleString('en-US')} B)`,
      value: sizes.cloudmom!.ours,
      unit: 'B',
      goal: '≤ 30 KB',
      met: sizes.cloudmom!.ours <= 30 * 1024,
    },
  ];
}

async function p3(): Promise<BenchRow[]> {
  let rows: BenchRow[] = [];
  if (process.env.BENCH_P3_SKIP_MOTO !== '1') {
    const moto = await startMoto();
    try {
      rows = await publishBench(moto.endpoint, 'moto', true);
    } finally {
      await moto.stop();
    }
  }
  // the same against fauxqs (in a process of its own, as every other peer)
  const faux = await startFauxqsProcess();
  try {
    rows.push(...(await publishBench(faux.endpoint, 'fauxqs', false)));
  } finally {
    await faux.stop();
  }
  return rows;
}

async function publishBench(
  endpoint: string,
  emulator: string,
  main: boolean,
): Promise<BenchRow[]> {
  const sqs = new SQSClient(awsClientConfig(endpoint));
  const N = Number(process.env[`BENCH_P3_N_${emulator.toUpperCase()}`] ?? 1_000);
  const body = (i: number) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] });
  // Each round sends to a queue of its own, made off the clock; the earlier rounds' queues are
  // deleted first, so what the emulator holds stays one round's worth instead of growing with
  // every round and slowing whichever side runs later.
  const made: string[] = [];
  const fresh = async (name: string) => {
    for (const url of made.splice(0))
      await sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined);
    const url = (
      await sqs.send(new CreateQueueCommand({ QueueName: `bench-${name}-${Date.now()}` }))
    ).QueueUrl!;
    made.push(url);
    return url;
  };
  const time = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    return N / ((performance.now() - t0) / 1000);
  };
  /** A round on a broker of a fresh queue (each side keeps its first broker): its publish rate. */
  const onBroker = (name: string, publish: (broker: SqsBroker) => Promise<unknown>) => async () => {
    const url = await fresh(name);
    const broker = keepFirst(
      `P3 ${name} ${emulator}`,
      new SqsBroker({ queue: url, client: sqs, logger: false }),
    );
    const rate = await time(() => publish(broker));
    await broker.stop();
    return rate;
  };
  // the order puts each compared pair side by side (single, ours; batch, rawBatch), so the
  // two runs of a paired ratio are next to each other in every round, whichever way it runs
  const got = await interleave(
    {
      single: async () => {
        const url = await fresh('single');
        return time(() =>
          Promise.all(
            Array.from({ length: N }, (_, i) =>
              sqs.send(
                new SendMessageCommand({
                  QueueUrl: url,
                  MessageBody: JSON.stringify(body(i)),
                  MessageAttributes: {
                    target: { DataType: 'String', StringValue: 'orders' },
                    content_type: { DataType: 'String', StringValue: 'application/json' },
                    message_id: { DataType: 'String', StringValue: randomUUID() },
                  },
                }),
              ),
            ),
          ),
        );
      },
      ours: onBroker('ours', (broker) =>
        Promise.all(Array.from({ length: N }, (_, i) => broker.publish(body(i), 'orders'))),
      ),
      batch: onBroker('batch', (broker) =>
        broker.publishBatch(
          Array.from({ length: N }, (_, i) => ({ body: body(i), target: 'orders' })),
        ),
      ),
      // the emulator's ceiling for any client: the same messages as SendMessageBatch calls of
      // 10 by hand, all at once (what "≥ 5× one SendMessage" can be at most on this emulator)
      rawBatch: async () => {
        const url = await fresh('raw-batch');
        return time(() =>
          Promise.all(
            Array.from({ length: N / 10 }, (_, b) =>
              sqs.send(
                new SendMessageBatchCommand({
                  QueueUrl: url,
                  Entries: Array.from({ length: 10 }, (_, k) => ({
                    Id: String(k),
                    MessageBody: JSON.stringify(body(b * 10 + k)),
                    MessageAttributes: {
                      target: { DataType: 'String', StringValue: 'orders' },
                      content_type: { DataType: 'String', StringValue: 'application/json' },
                      message_id: { DataType: 'String', StringValue: randomUUID() },
                    },
                  })),
                }),
              ),
            ),
          ),
        );
      },
      producer: async () => {
        const url = await fresh('producer');
        const producer = Producer.create({ queueUrl: url, sqs, batchSize: 10 });
        return time(() =>
          producer.send(
            Array.from({ length: N }, (_, i) => ({
              id: String(i),
              body: JSON.stringify(body(i)),
              messageAttributes: {
                target: { DataType: 'String', StringValue: 'orders' },
                content_type: { DataType: 'String', StringValue: 'application/json' },
                message_id: { DataType: 'String', StringValue: randomUUID() },
              },
            })),
          ),
        );
      },
    },
    emulator === 'fauxqs' ? P3_ROUNDS_FAUXQS : P3_ROUNDS,
    { warmup: 1, log: `P3 ${emulator} msg/s` },
  );
  // request(): the per-instance reply queue costs one CreateQueue on the first request
  const rpc = await (async () => {
    if (!main) return undefined;
    const url = await fresh('rpc');
    const responder = new SqsBroker({
      queue: url,
      client: sqs,
      logger: false,
      waitTimeSeconds: 20,
    });
    responder.add('echo', (_p, b) => b);
    await responder.start();
    const requester = new SqsBroker({
      queue: url,
      client: sqs,
      logger: false,
      waitTimeSeconds: 20,
    });
    const t0 = performance.now();
    await requester.request({ n: 0 }, 'echo');
    const first = performance.now() - t0;
    const later: number[] = [];
    for (let i = 1; i <= 30; i++) {
      const t = performance.now();
      await requester.request({ n: i }, 'echo');
      later.push(performance.now() - t);
    }
    await requester.stop();
    await responder.stop();
    later.sort((a, b) => a - b);
    return { first, median: later[Math.floor(later.length / 2)]! };
  })();
  // what each row says of its sides, by variant
  const CASE = {
    ours: `SQS publish against ${emulator}, ${N} concurrent publishes (JSON)`,
    batch: `SQS publishBatch(array) against ${emulator}, ${N} messages in one call (JSON)`,
    rawBatch: `the emulator's ceiling: raw SendMessageBatch(10) × ${N / 10} at once against ${emulator}`,
  };
  const ANCHOR = {
    single: 'one SendMessage per message (same concurrency)',
    producer: 'sqs-producer send(array), batchSize 10',
    rawBatch: 'raw SendMessageBatch(10) by hand, all at once (the limit)',
  };
  const row = (
    ours: keyof typeof CASE,
    anchor: keyof typeof ANCHOR,
    goal?: ['≥', number],
  ): BenchRow =>
    ratioRow({
      id: 'P3',
      case: CASE[ours],
      unit: 'msg/s',
      ours: got[ours],
      anchor: got[anchor],
      anchorName: ANCHOR[anchor],
      ...(goal ? { goal } : {}),
    });
  const out: BenchRow[] = [
    // issue 13 set the ≥ 5 goal on fauxqs; moto is held to it too
    row('ours', 'single', ['≥', 5]),
    row('ours', 'producer', ['≥', 1.1]),
    row('rawBatch', 'single'),
    row('rawBatch', 'producer'),
    // the limit of the same shape (one call for all, no result per message): publishBatch; a
    // publish per message carries a promise each, shown beside it without a goal
    row('batch', 'rawBatch', ['≥', 0.9]),
    row('ours', 'rawBatch'),
    row('batch', 'producer', ['≥', 1.1]),
  ];
  if (rpc)
    out.push({
      id: 'RPC',
      case: `request() round trip over SQS on ${emulator}, median of 30 (per-instance reply queue)`,
      value: Math.round(rpc.median * 10) / 10,
      unit: 'ms',
      anchor: 'first request (creates the reply queue)',
      anchorValue: Math.round(rpc.first * 10) / 10,
    });
  return out;
}

/** P7: draining a filled queue, cloudmom's consumer vs the hand loop, interleaved rounds. */
async function p7(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const moto = await startMoto();
  try {
    rows.push(...(await consumeBench(moto.endpoint, 'moto')));
  } finally {
    await moto.stop();
  }
  const faux = await startFauxqsProcess();
  try {
    rows.push(...(await consumeBench(faux.endpoint, 'fauxqs')));
  } finally {
    await faux.stop();
  }
  return rows;
}

async function consumeBench(endpoint: string, emulator: string): Promise<BenchRow[]> {
  const sqs = new SQSClient(awsClientConfig(endpoint));
  const N = 2_000;
  const attrs = {
    target: { DataType: 'String', StringValue: 'orders' },
    content_type: { DataType: 'String', StringValue: 'application/json' },
  };
  /** A fresh queue holding N messages (filled outside the timing). */
  const filled = async (name: string) => {
    const url = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: `bench-consume-${name}-${Date.now()}`,
          Attributes: { VisibilityTimeout: '60' },
        }),
      )
    ).QueueUrl!;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < N; i += 10)
      sends.push(
        sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: Array.from({ length: 10 }, (_, j) => ({
              Id: String(j),
              MessageBody: JSON.stringify({ id: i + j, name: `item ${i + j}` }),
              MessageAttributes: attrs,
            })),
          }),
        ),
      );
    await Promise.all(sends);
    return url;
  };
  const ours = async (url: string) => {
    let n = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => {
      done = r;
    });
    const broker = keepFirst(
      `P7 ours ${emulator}`,
      new SqsBroker({
        queue: url,
        client: sqs,
        logger: false,
        concurrency: 10,
        waitTimeSeconds: 1,
      }),
    );
    broker.add('orders', (_p, body: { id: number }) => {
      sink += body.id;
      if (++n === N) done();
    });
    const t0 = performance.now();
    await broker.start();
    await all;
    const s = (performance.now() - t0) / 1000;
    await broker.stop();
    return N / s;
  };
  const hand = async (url: string) => {
    let n = 0;
    const t0 = performance.now();
    while (n < N) {
      const r = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const ms = r.Messages ?? [];
      if (ms.length === 0) continue;
      for (const m of ms) {
        if (m.MessageAttributes?.target?.StringValue === 'orders') sink += JSON.parse(m.Body!).id;
        n++;
      }
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: ms.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
    return N / ((performance.now() - t0) / 1000);
  };
  /** sqs-consumer as its README has it: handleMessageBatch, batch 10 (one batch at a time: 10 in hand). */
  const peer = async (url: string) => {
    let n = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => {
      done = r;
    });
    const consumer = keepFirst(
      `P7 peer ${emulator}`,
      SqsConsumer.create({
        queueUrl: url,
        sqs,
        batchSize: 10,
        waitTimeSeconds: 1,
        pollingWaitTimeMs: 0,
        messageAttributeNames: ['All'],
        messageSystemAttributeNames: ['All'],
        handleMessageBatch: async (ms) => {
          for (const m of ms) {
            if (m.MessageAttributes?.target?.StringValue === 'orders')
              sink += JSON.parse(m.Body!).id;
            n++;
          }
          if (n >= N) done();
          return ms;
        },
      }),
    );
    consumer.on('error', () => {});
    const t0 = performance.now();
    consumer.start();
    await all;
    const rate = N / since(t0);
    consumer.stop({ abort: true });
    return rate;
  };
  const run = (f: (url: string) => Promise<number>, name: string) => async () => {
    const url = await filled(name);
    const rate = await f(url);
    await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
    return rate;
  };
  const got = await interleave(
    { ours: run(ours, 'ours'), peer: run(peer, 'peer'), hand: run(hand, 'hand') },
    P7_ROUNDS,
    { warmup: 0, log: `P7 ${emulator} msg/s` },
  );
  sqs.destroy();
  const name = `SQS consume against ${emulator}: drain ${N.toLocaleString('en-US')} messages, concurrency 10`;
  return [
    ratioRow({
      id: 'P7',
      case: name,
      unit: 'msg/s',
      ours: got.ours,
      anchor: got.peer,
      anchorName: 'sqs-consumer handleMessageBatch, batchSize 10',
      goal: ['≥', 1.2],
    }),
    ratioRow({
      id: 'P7',
      case: name,
      unit: 'msg/s',
      ours: got.ours,
      anchor: got.hand,
      anchorName: 'hand loop ReceiveMessage(10) + DeleteMessageBatch (the limit)',
      goal: ['≥', 0.9],
    }),
    // the emulator's ceiling for "ahead of sqs-consumer": the limit itself against it
    ratioRow({
      id: 'P7',
      case: `the emulator's ceiling: the hand loop (the limit) against ${emulator}, drain ${N.toLocaleString('en-US')}`,
      unit: 'msg/s',
      ours: got.hand,
      anchor: got.peer,
      anchorName: 'sqs-consumer handleMessageBatch, batchSize 10',
    }),
  ];
}

export const suite: BenchSuite = {
  name: 'aws',
  async run() {
    // BENCH_ONLY=P1 (or "P1,P3"...) runs only those parts; unset runs all.
    const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim().toUpperCase());
    const want = (id: string) => !only || only.includes(id);
    const rows: BenchRow[] = [];
    if (want('P1')) rows.push(...(await p1()));
    if (want('P2')) rows.push(...(await p2()));
    if (want('P3')) rows.push(...(await p3()));
    if (want('P7')) rows.push(...(await p7()));
    return rows;
  },
};
