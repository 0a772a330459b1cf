/**
 * The built `cloudmom` bin as a subprocess against moto: publish (one body, JSON lines),
 * request (a responder in this process), tail, and `dlq list/show/redrive` of 10,000 dead
 * letters — in the wire format the core writes its dead-letter copies in, plus ones a failing
 * handler dead-lettered for real and ones SQS moved itself (maxReceiveCount) — including a
 * redrive killed midway and resumed.
 */
import { GetQueueAttributesCommand, type Message, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Properties } from 'cloudmom';
import { SqsBroker } from 'cloudmom/aws';
import { startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { INTERNALS } from '../../src/broker.ts';
import type { OutgoingMessage } from '../../src/transport.ts';
import { type BuiltCli, buildCli, runCli } from '../cli-bin.ts';
import { AWS_REGION, AWS_TEST_CREDENTIALS } from '../emulators/aws/moto.ts';
import { clients, createQueue, createQueueWithDlq, deleteQueues, drain, uid } from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs } = clients(endpoint);
const env = {
  AWS_ENDPOINT_URL: endpoint,
  AWS_ACCESS_KEY_ID: AWS_TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: AWS_TEST_CREDENTIALS.secretAccessKey,
  AWS_REGION,
  CLOUDMOM_LOG_LEVEL: 'warn',
};
const created: string[] = [];
let cli: BuiltCli;
type RunOpts = Parameters<typeof runCli>[2];
function cloudmom(args: string[], o?: RunOpts): ReturnType<typeof runCli>;
function cloudmom(peer: Peer, args: string[], o?: RunOpts): ReturnType<typeof runCli>;
function cloudmom(a: string[] | Peer, b?: string[] | RunOpts, c?: RunOpts) {
  const [peer, args, o] = Array.isArray(a) ? [undefined, a, b as RunOpts] : [a, b as string[], c];
  return runCli(cli.bin, args, {
    ...o,
    env: { ...env, ...(peer ? { AWS_ENDPOINT_URL: peer.endpoint } : {}), ...o?.env },
  });
}

beforeAll(async () => {
  cli = await buildCli('aws');
  console.log(`cli: built in ${cli.buildMs} ms`);
}, 120_000);

afterAll(async () => {
  cli?.remove();
  await deleteQueues(sqs, ...created);
});

const depth = (url: string) => depthOn(sqs, url);

async function depthOn(client: typeof sqs, url: string): Promise<number> {
  const r = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return Number(r.Attributes!.ApproximateNumberOfMessages);
}

const attr = (m: Message, k: string) => m.MessageAttributes?.[k]?.StringValue;

describe('cloudmom publish / request / tail on moto', () => {
  it('publishes one body with its options, and JSON lines in bulk', async () => {
    const q = await createQueue(sqs, `cli-pub-${uid()}`);
    created.push(q.url);
    const one = await cloudmom([
      'publish',
      `sqs://${q.name}`,
      'order.created',
      '{"id":7}',
      '-H',
      'tenant=acme',
      '--correlation-id',
      'c-1',
      '--json',
    ]);
    expect(one.code, one.stderr).toBe(0);
    const { messageId } = JSON.parse(one.stdout);
    const [m] = await drain(sqs, q.url, { waitTimeSeconds: 1 });
    expect(m!.MessageId).toBe(messageId);
    expect(m!.Body).toBe('{"id":7}');
    expect(attr(m!, 'target')).toBe('order.created');
    expect(attr(m!, 'tenant')).toBe('acme');
    expect(attr(m!, 'correlation_id')).toBe('c-1');

    const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ i })).join('\n');
    const bulk = await cloudmom(['publish', `sqs://${q.name}`, 'bulk', '-', '--lines', '--json'], {
      input: lines,
    });
    expect(bulk.code, bulk.stderr).toBe(0);
    expect(JSON.parse(bulk.stdout)).toMatchObject({ published: 1000, failed: 0 });
    expect(await depth(q.url)).toBe(1000);
    console.log(`cli: publish --lines 1000 in ${bulk.ms} ms (process included)`);
  });

  it('requests and prints the reply; exit 3 when none comes in time', async () => {
    const q = await createQueue(sqs, `cli-req-${uid()}`);
    created.push(q.url);
    const responder = new SqsBroker({ queue: q.url, waitTimeSeconds: 1, logger: false });
    responder.add('greet', (_p, name: string) => ({ hello: name }));
    await responder.start();
    try {
      const r = await cloudmom(['request', `sqs://${q.name}`, 'greet', '"Ada"', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const reply = JSON.parse(r.stdout);
      expect(reply.body).toEqual({ hello: 'Ada' });
      expect(reply.correlationId).toMatch(/-/);
      const text = await cloudmom(['request', `sqs://${q.name}`, 'greet', 'Bob']);
      expect(text.stdout.trim()).toBe('{\n  "hello": "Bob"\n}');
    } finally {
      await responder.stop();
    }
    const none = await cloudmom(['request', `sqs://${q.name}`, 'greet', '1', '--timeout', '1500']);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/no reply from "greet" within 1500 ms/);
  });

  it('tails live, one line per message, bodies only with --bodies', async () => {
    const q = await createQueue(sqs, `cli-tail-${uid()}`);
    created.push(q.url);
    const tailing = cloudmom([
      'tail',
      `sqs://${q.name}?waitTimeSeconds=1`,
      '--max',
      '3',
      '--idle',
      '30',
    ]);
    // published while tail runs: it is live
    await new Promise((r) => setTimeout(r, 1500));
    const pub = new SqsBroker({ queue: q.url, logger: false });
    for (let i = 0; i < 3; i++)
      await pub.publish({ secret: `s-${i}` }, 'audit', { headers: { user: 'u-secret' } });
    await pub.stop();
    const t = await tailing;
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines)
      expect(l).toMatch(
        /audit {2}id=\S+ {2}\d+B {2}application\/json {2}delivery=1 {2}headers=user/,
      );
    expect(t.stdout).not.toMatch(/secret/);
    expect(await depth(q.url)).toBe(0); // tail consumes what it shows

    const pub2 = new SqsBroker({ queue: q.url, logger: false });
    await pub2.publish({ secret: 's' }, 'audit', { headers: { user: 'u' } });
    await pub2.stop();
    const b = await cloudmom([
      'tail',
      `sqs://${q.name}?waitTimeSeconds=1`,
      '--max',
      '1',
      '--bodies',
      '--json',
    ]);
    expect(JSON.parse(b.stdout)).toMatchObject({
      target: 'audit',
      body: { secret: 's' },
      headers: { user: 'u' },
    });
  });

  it('names the fix: a missing queue (exit 1), a bad parameter (exit 2), no dlq on kafka (exit 2)', async () => {
    const missing = await cloudmom(['publish', `sqs://cli-missing-${uid()}`, 't', '1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NonExistentQueue|QueueDoesNotExist|does not exist/i);
    const bad = await cloudmom(['dlq', 'list', 'sqs://q?dlqq=x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/valid: .*dlq/);
    const kafka = await cloudmom(['dlq', 'list', 'kafka://127.0.0.1:1/t']);
    expect(kafka.code).toBe(2);
    expect(kafka.stderr).toMatch(/dlq is not supported on kafka/);
  });
});

describe('cloudmom dlq redrive', () => {
  // moto deletes a message in O(queue length) per receipt handle (models.py delete_message
  // rebuilds the message list): 10,000 dead letters take it over 6 minutes on this machine,
  // so moto gets 1,000 and fauxqs (Node, in process) the 10,000.
  it(
    'on moto: 1,000 dead letters back with their attributes, resuming after a kill',
    () => redriveScenario({ name: 'moto', sqs, endpoint, n: 1_000, created }),
    115_000,
  );

  it('on fauxqs: 10,000 dead letters back with their attributes, resuming after a kill', async () => {
    const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
    const fq = `http://127.0.0.1:${server.port}`;
    try {
      await redriveScenario({
        name: 'fauxqs',
        sqs: clients(fq).sqs,
        endpoint: fq,
        n: 10_000,
        created: [],
      });
    } finally {
      await server.stop();
    }
  }, 115_000);

  it('dry-runs without moving, and --max moves only that many', async () => {
    const { queue, dlq } = await createQueueWithDlq(sqs, `cli-dry-${uid()}`);
    created.push(queue.url, dlq.url);
    for (let i = 0; i < 30; i++)
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: dlq.url,
          MessageBody: String(i),
          MessageAttributes: { target: { DataType: 'String', StringValue: 't' } },
        }),
      );
    const url = `sqs://${queue.name}?dlq=${dlq.name}&visibilityTimeoutSeconds=2`;
    const dry = await cloudmom(['dlq', 'redrive', url, '--dry-run', '--json']);
    expect(JSON.parse(dry.stdout)).toMatchObject({ wouldMove: 30, moved: 0 });
    expect(await depth(queue.url)).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    const some = await cloudmom(['dlq', 'redrive', url, '--max', '12', '--json']);
    expect(JSON.parse(some.stdout)).toMatchObject({ moved: 12, failed: 0 });
    expect(await depth(queue.url)).toBe(12);
    const text = await cloudmom(['dlq', 'redrive', url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^moved 18, failed 0 → http/m);
  });
});

/** A peer the redrive runs against: its client, its endpoint for the bin, how many dead letters. */
interface Peer {
  readonly name: string;
  readonly sqs: typeof sqs;
  readonly endpoint: string;
  readonly n: number;
  readonly created: string[];
}

async function redriveScenario(peer: Peer): Promise<void> {
  const base = `cli-dlq-${uid()}`;
  const N = peer.n;
  const half = Math.floor(N / 2);
  const { queue, dlq } = await createQueueWithDlq(peer.sqs, base, { maxReceiveCount: 1 });
  peer.created.push(queue.url, dlq.url);
  // 1. dead letters the core wrote: a failing handler (the real path), a few
  const failing = new SqsBroker({
    client: peer.sqs,
    queue: queue.url,
    waitTimeSeconds: 1,
    maxDeliveries: 1,
    logger: false,
  });
  failing.add('work', () => {
    throw new Error('boom');
  });
  await failing.start();
  for (let i = 0; i < 5; i++)
    await failing.publish({ i }, 'work', {
      correlationId: `real-${i}`,
      replyTo: 'cloudmom-reply-x',
      headers: { tenant: 'acme' },
    });
  await expect.poll(() => depthOn(peer.sqs, dlq.url), { timeout: 20_000 }).toBe(5);
  await failing.stop();
  // 2. one as SQS moves one itself (maxReceiveCount): the message as it was, no reason
  await peer.sqs.send(
    new SendMessageCommand({
      QueueUrl: dlq.url,
      MessageBody: '{"native":true}',
      MessageAttributes: {
        target: { DataType: 'String', StringValue: 'work' },
        content_type: { DataType: 'String', StringValue: 'application/json' },
        correlation_id: { DataType: 'String', StringValue: 'native-0' },
      },
    }),
  );
  // 3. the bulk: dead-letter copies exactly as the core sends them (transport.send)
  const writer = new SqsBroker({
    client: peer.sqs,
    queue: queue.url,
    logger: false,
  });
  const transport = writer[INTERNALS].transport;
  const bulk = N - 6;
  const t0 = Date.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < bulk; i += 10) {
    const batch: OutgoingMessage[] = [];
    for (let j = i; j < Math.min(bulk, i + 10); j++)
      batch.push({
        body: new TextEncoder().encode(JSON.stringify({ j })),
        target: 'work',
        messageId: `m-${j}`,
        contentType: 'application/json',
        headers: { tenant: 'acme', n: String(j) },
        correlationId: `bulk-${j}`,
        replyTo: 'cloudmom-reply-x',
        destination: dlq.url,
        deadLetter: { code: 'handler-failed', description: 'Error: boom', deliveryCount: 5 },
      });
    sends.push(transport.send(batch));
    if (sends.length >= 20) await Promise.all(sends.splice(0));
  }
  await Promise.all(sends);
  await writer.stop();
  console.log(`cli (${peer.name}): ${bulk} dead letters written in ${Date.now() - t0} ms`);
  expect(await depthOn(peer.sqs, dlq.url)).toBe(N);

  // list and show read without taking
  const url = `sqs://${queue.name}?visibilityTimeoutSeconds=5`;
  const list = await cloudmom(peer, ['dlq', 'list', url, '--max', '20', '--json']);
  expect(list.code, list.stderr).toBe(0);
  const listed = list.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(listed).toHaveLength(20);
  expect(listed[0]).toMatchObject({ target: 'work', origin: queue.url });
  expect(listed.some((d) => d.reason === 'handler-failed')).toBe(true);
  const one = listed.find((d) => d.correlationId?.startsWith('bulk-'));
  const show = await cloudmom(peer, ['dlq', 'show', url, one.messageId, '--json']);
  expect(show.code, show.stderr).toBe(0);
  expect(JSON.parse(show.stdout)).toMatchObject({
    messageId: one.messageId,
    reason: 'handler-failed',
    description: 'Error: boom',
    headers: { tenant: 'acme' },
  });

  // redrive, killed once about a fifth is through, then resumed
  let killedAt = 0;
  const first = await cloudmom(peer, ['dlq', 'redrive', url, '--json'], {
    onSpawn: (child) => {
      const watch = setInterval(async () => {
        if ((await depthOn(peer.sqs, queue.url)) >= N / 5) {
          clearInterval(watch);
          killedAt = await depthOn(peer.sqs, queue.url);
          child.kill('SIGKILL');
        }
      }, 200);
      child.on('close', () => clearInterval(watch));
    },
  });
  expect(first.signal).toBe('SIGKILL');
  console.log(`cli (${peer.name}): redrive killed after ${first.ms} ms with ${killedAt} moved`);
  // messages in hand at the kill come back after the visibility timeout (5 s here)
  await new Promise((r) => setTimeout(r, 6000));
  const second = await cloudmom(peer, ['dlq', 'redrive', url, '--json']);
  expect(second.code, second.stderr).toBe(0);
  const result = JSON.parse(second.stdout);
  expect(result.failed).toBe(0);
  console.log(`cli (${peer.name}): resumed redrive moved ${result.moved} in ${result.seconds} s`);
  expect(await depthOn(peer.sqs, dlq.url)).toBe(0);
  const total = await depthOn(peer.sqs, queue.url);
  expect(total).toBeGreaterThanOrEqual(N);
  expect(total - N).toBeLessThanOrEqual(200); // re-sent but not deleted at the kill: at least once

  // every message back, with its own attributes and none of the dead-letter ones
  const back = await drain(peer.sqs, queue.url);
  const byCorr = new Map<string, Message>();
  for (const m of back) byCorr.set(attr(m, 'correlation_id')!, m);
  expect(byCorr.size).toBe(N);
  const m = byCorr.get(`bulk-${half}`)!;
  expect(m.Body).toBe(`{"j":${half}}`);
  expect(
    Object.fromEntries(Object.entries(m.MessageAttributes!).map(([k, v]) => [k, v.StringValue])),
  ).toEqual({
    target: 'work',
    content_type: 'application/json',
    correlation_id: `bulk-${half}`,
    reply_to: 'cloudmom-reply-x',
    tenant: 'acme',
    n: String(half),
  });
  expect(attr(byCorr.get('real-3')!, 'tenant')).toBe('acme');
  expect(byCorr.get('native-0')!.Body).toBe('{"native":true}');

  // and a handler takes them as any message
  const got: Properties[] = [];
  const ok = new SqsBroker({
    client: peer.sqs,
    queue: queue.url,
    waitTimeSeconds: 1,
    logger: false,
  });
  ok.add('work', (p) => void got.push(p));
  await ok.publish({ again: true }, 'work', { correlationId: 'after' });
  await ok.start();
  await expect.poll(() => got.length, { timeout: 20_000 }).toBe(1);
  await ok.stop();
}
