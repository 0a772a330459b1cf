/**
 * SqsBroker beyond the conformance suite, against moto: auto-batching and per-entry outcomes,
 * queue names/URLs/ARNs, attribute limits, visibility heartbeat, retry delay, dead-letter
 * copies that must pack headers, FIFO deduplication, the per-instance reply queue.
 */
import {
  CreateQueueCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  type BrokerOptions,
  CloudmomError,
  InvalidArgumentError,
  InvalidMessageError,
  type Properties,
} from 'cloudmom';
import { SqsBroker } from 'cloudmom/aws';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { INTERNALS } from '../../src/broker.ts';
import type { OutgoingMessage } from '../../src/transport.ts';
import { awsClientConfig } from '../emulators/aws/moto.ts';
import {
  clients,
  createQueueWithDlq,
  deleteQueues,
  drain,
  readDeadLetter,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs } = clients(endpoint);
const OPTS: BrokerOptions = { logger: false };
const CONSUMER = { waitTimeSeconds: 1, visibilityTimeoutSeconds: 5 } as const;
const created: string[] = [];
const brokers: SqsBroker[] = [];
afterEach(async () => {
  await Promise.allSettled(brokers.splice(0).map((b) => b.stop()));
});
afterAll(() => deleteQueues(sqs, ...created));

async function topology(fifo = false) {
  const t = await createQueueWithDlq(sqs, `sq-${uid()}`, { fifo });
  created.push(t.queue.url, t.dlq.url);
  return t;
}

function make(options: ConstructorParameters<typeof SqsBroker>[0]): SqsBroker {
  const b = new SqsBroker({ ...OPTS, ...CONSUMER, ...options });
  brokers.push(b);
  return b;
}

/** A real client on moto that records the commands it sends. */
function countingClient() {
  const client = new SQSClient(awsClientConfig(endpoint));
  const calls: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push(context.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  return { client, calls };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, probe: () => T | undefined | false, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('SqsBroker publish', () => {
  it('auto-batches: 25 concurrent publishes go out in 3 SendMessageBatch calls, each caller gets its id', async () => {
    const { queue } = await topology();
    const { client, calls } = countingClient();
    const b = make({ client, queue: queue.url });
    const ids = await Promise.all(Array.from({ length: 25 }, (_, i) => b.publish({ i }, 'n')));
    expect(new Set(ids).size).toBe(25);
    expect(calls.filter((c) => c === 'SendMessageBatchCommand')).toHaveLength(3);
    const got = await drain(sqs, queue.url, { waitTimeSeconds: 1 });
    expect(got.map((m) => m.MessageId).sort()).toEqual([...ids].sort());
  });

  it('maps per-entry failures of one batch to their own messages (platform errors, read by isRetryable)', async () => {
    const { queue } = await topology();
    const b = make({ client: sqs, queue: queue.url });
    const msg = (i: number, delaySeconds?: number): OutgoingMessage => ({
      body: new TextEncoder().encode(`"m${i}"`),
      target: 't',
      messageId: `id-${i}`,
      contentType: 'application/json',
      headers: {},
      delaySeconds,
    });
    // 901 s passes no validation here (we call the transport directly): SQS fails that entry only
    const transport = b[INTERNALS].transport;
    const outcomes = await transport.send([msg(0), msg(1, 901), msg(2)]);
    expect(outcomes[0]).toMatchObject({ ok: true });
    expect(outcomes[2]).toMatchObject({ ok: true });
    expect(outcomes[1]!.ok).toBe(false);
    // the transport returns the platform's error; the core wraps it once
    const err = (outcomes[1] as { error: Error }).error;
    expect(err).not.toBeInstanceOf(CloudmomError);
    expect(err.name).toMatch(/InvalidParameterValue/);
    expect(transport.isRetryable(err)).toBe(false);
    expect(transport.errorCode?.(err)).toBe('send-failed');
    expect(await drain(sqs, queue.url, { waitTimeSeconds: 1 })).toHaveLength(2);
  });

  it('a missing queue fails on send (not on construction): every caller gets a typed not-found error', async () => {
    const b = make({ client: sqs, queue: `does-not-exist-${uid()}` });
    const results = await Promise.allSettled([b.publish('a', 't'), b.publish('b', 't')]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as CloudmomError;
      expect(e).toBeInstanceOf(CloudmomError);
      expect(e.code).toBe('not-found');
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/QueueDoesNotExist|NonExistentQueue/);
    }
    // by URL too: the queue is not looked up first
    const url = new URL(`/123456789012/does-not-exist-${uid()}`, endpoint).toString();
    const byUrl = make({ client: sqs, queue: url });
    const e = (await byUrl.publish('c', 't').catch((x: unknown) => x)) as CloudmomError;
    expect(e.code).toBe('not-found');
  });

  it('takes a queue by name, URL or ARN and looks a name up once', async () => {
    const { queue } = await topology();
    const { client, calls } = countingClient();
    for (const q of [queue.name, queue.url, queue.arn]) {
      const b = make({ client, queue: q });
      await b.publish('x', 't');
      await b.publish('y', 't');
    }
    expect(calls.filter((c) => c === 'GetQueueUrlCommand')).toHaveLength(2); // name, ARN; URL none
    expect(await drain(sqs, queue.url, { waitTimeSeconds: 1 })).toHaveLength(6);
  });

  it('refuses what SQS cannot carry, before sending anything', async () => {
    const { queue } = await topology();
    const { client, calls } = countingClient();
    const b = make({ client, queue: queue.url });
    const headers = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, 'v']));
    // target + content_type + 8 headers = 10: fine; one more is refused
    await b.publish('ok', 't', { headers: headers(8) });
    await expect(b.publish('x', 't', { headers: headers(9) })).rejects.toThrow(/at most 10/);
    await expect(
      b.publish('x', 't', { headers: headers(7), correlationId: 'c', replyTo: 'r' }),
    ).rejects.toBeInstanceOf(InvalidMessageError);
    await expect(b.publish('x', 't', { headers: { 'with space': 'v' } })).rejects.toThrow(
      /cannot travel/,
    );
    await expect(b.publish('x', 't', { headers: { 'AWS.thing': 'v' } })).rejects.toThrow(
      /reserved/,
    );
    await expect(b.publish('x', 't', { headers: { body_encoding: 'v' } })).rejects.toThrow(
      /reserved/,
    );
    await expect(b.publish('x', 't', { headers: { ok: 'bell\u0007' } })).rejects.toThrow(
      /"ok" has characters SQS cannot carry \(control/,
    );
    expect(calls.filter((c) => c.startsWith('SendMessage'))).toHaveLength(1);
  });

  it('binary and empty bodies are marked on the wire, text and JSON travel as they are', async () => {
    const { queue } = await topology();
    const b = make({ client: sqs, queue: queue.url });
    await b.publish({ a: 1 }, 'j');
    await b.publish(new Uint8Array([0xff, 0x00, 0x41]), 'bin');
    await b.publish('', 'empty');
    const got = await drain(sqs, queue.url, { waitTimeSeconds: 1 });
    const by = (t: string) => got.find((m) => m.MessageAttributes?.target?.StringValue === t)!;
    expect(by('j').Body).toBe('{"a":1}');
    expect(by('j').MessageAttributes?.body_encoding).toBeUndefined();
    expect(by('bin').Body).toBe(Buffer.from([0xff, 0x00, 0x41]).toString('base64'));
    expect(by('bin').MessageAttributes?.body_encoding?.StringValue).toBe('base64');
    expect(by('empty').MessageAttributes?.body_encoding?.StringValue).toBe('empty');
  });

  it('FIFO: groupKey becomes MessageGroupId, deduplicationId dedupes, delaySeconds is refused', async () => {
    const { queue } = await topology(true);
    const b = make({ client: sqs, queue: queue.url });
    await b.publish('one', 't', { groupKey: 'g', deduplicationId: 'same' });
    await b.publish('two', 't', { groupKey: 'g', deduplicationId: 'same' });
    await expect(b.publish('x', 't', { delaySeconds: 1 })).rejects.toBeInstanceOf(
      InvalidMessageError,
    );
    const got = await drain(sqs, queue.url, { waitTimeSeconds: 1 });
    expect(got.map((m) => m.Body)).toEqual(['one']);
    expect(got[0]!.Attributes?.MessageGroupId).toBe('g');
  });

  it('rejects unknown and invalid options', () => {
    expect(() => new SqsBroker({ queue: 'q', waitTime: 1 } as never)).toThrow(InvalidArgumentError);
    expect(() => new SqsBroker({} as never)).toThrow(/queue/);
    expect(() => new SqsBroker({ queue: 'q', waitTimeSeconds: 21 })).toThrow(/waitTimeSeconds/);
    expect(() => new SqsBroker({ queue: 'q', visibilityTimeoutSeconds: 0 })).toThrow(
      /visibilityTimeoutSeconds/,
    );
  });

  it('exposes the injected client', () => {
    const b = new SqsBroker({ queue: 'q', client: sqs });
    expect(b.client).toBe(sqs);
  });
});

describe('SqsBroker consumer', () => {
  it('extends the visibility while a handler runs longer than the timeout (heartbeat)', async () => {
    const { queue } = await topology();
    const b = make({ client: sqs, queue: queue.url, visibilityTimeoutSeconds: 2 });
    const calls: number[] = [];
    b.add('slow', async (p) => {
      calls.push(p.deliveryCount);
      await sleep(4_500);
    });
    await b.start();
    await b.publish('x', 'slow');
    await until('the handler to finish', () => b.stats.acked >= 1, 20_000);
    await sleep(2_500);
    expect(calls).toEqual([1]);
    const left = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 0 }),
    );
    expect(left.Messages ?? []).toEqual([]);
  }, 30_000);

  it('FIFO: a failure holds back the rest of its group until it succeeds; other groups go on', async () => {
    const { queue } = await topology(true);
    const b = make({
      client: sqs,
      queue: queue.url,
      concurrency: 10,
      retry: { baseDelayMs: 100, maxDelayMs: 100 },
    });
    const order: string[] = [];
    let failedOnce = false;
    b.add('g', async (_p, body: string) => {
      await sleep(10);
      if (body === 'a1' && !failedOnce) {
        failedOnce = true;
        order.push('a1!');
        throw new Error('first try fails');
      }
      order.push(body);
    });
    for (const x of ['a1', 'b1', 'a2', 'b2', 'a3', 'b3'])
      await b.publish(x, 'g', { groupKey: x[0]! });
    await b.start();
    await until('all six', () => order.filter((o) => !o.endsWith('!')).length >= 6, 20_000);
    expect(order.filter((o) => o.startsWith('a'))).toEqual(['a1!', 'a1', 'a2', 'a3']);
    expect(order.filter((o) => o.startsWith('b'))).toEqual(['b1', 'b2', 'b3']);
  }, 30_000);

  it('retries after the backoff delay, by visibility change', async () => {
    const { queue } = await topology();
    const b = make({
      client: sqs,
      queue: queue.url,
      retry: { baseDelayMs: 2_000, maxDelayMs: 2_000 },
    });
    const at: number[] = [];
    b.add('later', () => {
      at.push(Date.now());
      if (at.length === 1) throw new Error('first');
    });
    await b.start();
    await b.publish('x', 'later');
    await until('two deliveries', () => at.length >= 2, 20_000);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1_500);
  }, 30_000);

  it('a dead-lettered copy keeps its headers even when the reason does not fit in 10 attributes', async () => {
    const { queue, dlq } = await topology();
    const b = make({ client: sqs, queue: queue.url, unknownTarget: 'dead-letter' });
    const headers = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`h${i}`, `v${i}`]));
    await b.start();
    await b.publish({ x: 1 }, 'nobody', { headers });
    let deadLetters: ReturnType<typeof readDeadLetter>[] = [];
    for (let i = 0; i < 100 && deadLetters.length === 0; i++) {
      deadLetters = (await drain(sqs, dlq.url, { waitTimeSeconds: 1 })).map(readDeadLetter);
    }
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]!.reason.code).toBe('unknown-target');
    expect(deadLetters[0]!.headers).toEqual(headers);
    expect(deadLetters[0]!.body).toEqual({ x: 1 });
  });

  it('start() without a RedrivePolicy nor deadLetterQueue leaves a poison message for redelivery, logged', async () => {
    const url = (await sqs.send(new CreateQueueCommand({ QueueName: `sq-${uid()}-nodlq` })))
      .QueueUrl!;
    created.push(url);
    const errors: string[] = [];
    const b = make({
      client: sqs,
      queue: url,
      logger: { debug() {}, info() {}, warn() {}, error: (m) => errors.push(m) },
    });
    b.add('x', () => undefined);
    await b.start();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{}' }));
    await until('the error log', () => errors.length > 0);
    expect(errors[0]).toMatch(/dead-lettering failed/);
  });

  it('request() creates its reply queue on demand and deletes it on stop', async () => {
    const { queue } = await topology();
    const prefix = `rq${uid()}-`;
    const responder = make({ client: sqs, queue: queue.url, replyAllowList: [`${prefix}*`] });
    responder.add('hi', (_p: Properties, b: string) => `hi ${b}`);
    await responder.start();
    const requester = make({ client: sqs, queue: queue.url, replyQueuePrefix: prefix });
    const list = async () =>
      (await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? [];
    expect(await list()).toEqual([]);
    const reply = await requester.request('you', 'hi');
    expect(reply.body).toBe('hi you');
    expect(await list()).toHaveLength(1);
    await requester.stop();
    expect(await list()).toEqual([]);
  });
});
