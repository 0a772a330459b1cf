/**
 * Fuzzing the Lambda entrypoint: 1,000 generated SQS records (100 events of 10) derived from a
 * record captured from moto — random bodies (JSON, text, invalid JSON, random bytes, large),
 * random and odd attributes, missing/empty/unknown targets, foreign reply addresses, receive
 * counts. Every record must end exactly one way, as an independent model of the contract says:
 * dispatched (handler ran, not failed), failed for retry (in batchItemFailures), or
 * dead-lettered with its reason (read back from the DLQ in moto). No crash, nothing lost.
 */
import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { lambdaHandler, SqsBroker, type SqsRecord } from 'cloudmom/aws';
import fc from 'fast-check';
import { afterAll, expect, inject, it } from 'vitest';
import {
  clients,
  createQueueWithDlq,
  deleteQueues,
  drain,
  lambdaContext,
  readDeadLetter,
  toLambdaRecord,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs } = clients(endpoint);
const MAX_DELIVERIES = 3;

type Expected = 'dispatched' | 'retry' | { dead: string };

interface Spec {
  target: string | undefined;
  contentType: string | undefined;
  body: { text: string; encoding?: 'base64' | 'empty' };
  receiveCount: number;
  replyTo: string | undefined;
  extra: [string, { stringValue?: string; binaryValue?: string; dataType: string }][];
}

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** What the contract says happens to a record (independent of the adapter's code). */
function model(s: Spec): Expected {
  if (s.target === undefined || s.target === '') return { dead: 'missing-target' };
  if (s.target !== 'echo' && s.target !== 'boom') return { dead: 'unknown-target' };
  if (s.replyTo !== undefined && !s.replyTo.startsWith('cloudmom-reply-'))
    return { dead: 'reply-not-allowed' };
  const bytes =
    s.body.encoding === 'base64'
      ? Buffer.from(s.body.text, 'base64')
      : s.body.encoding === 'empty'
        ? new Uint8Array(0)
        : new TextEncoder().encode(s.body.text);
  const type = (s.contentType ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  try {
    if (type === 'application/json') JSON.parse(strict.decode(bytes));
    else if (type === 'text/plain') strict.decode(bytes);
    else if (type !== 'application/octet-stream') throw new Error('no codec');
  } catch {
    return { dead: 'undecodable' };
  }
  if (s.target === 'boom')
    return s.receiveCount >= MAX_DELIVERIES ? { dead: 'handler-failed' } : 'retry';
  return 'dispatched';
}

const attrName = fc.stringMatching(/^x-[A-Za-z0-9_-]{1,12}$/);
const specArb: fc.Arbitrary<Spec> = fc.record({
  target: fc.oneof(
    { weight: 5, arbitrary: fc.constant('echo') },
    { weight: 2, arbitrary: fc.constant('boom') },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  ),
  contentType: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constant('application/json') },
    { weight: 1, arbitrary: fc.constant('text/plain; charset=utf-8') },
    { weight: 1, arbitrary: fc.constant('application/octet-stream') },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  ),
  body: fc.oneof(
    { weight: 4, arbitrary: fc.jsonValue().map((v) => ({ text: JSON.stringify(v) ?? 'null' })) },
    {
      weight: 2,
      arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }).map((text) => ({ text })),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('{not json', '[1,', '"unterminated', 'undefined', '{}}')
        .map((text) => ({ text })),
    },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 64 })
        .map((b) => ({ text: Buffer.from(b).toString('base64'), encoding: 'base64' as const })),
    },
    { weight: 1, arbitrary: fc.constant({ text: '-', encoding: 'empty' as const }) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 100_000, max: 300_000 })
        .map((n) => ({ text: JSON.stringify({ big: 'x'.repeat(n) }) })),
    },
  ),
  receiveCount: fc.integer({ min: 1, max: 4 }),
  replyTo: fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant('evil-queue') },
    { weight: 1, arbitrary: fc.constant('https://sqs.example.com/123/evil') },
  ),
  extra: fc.array(
    fc.tuple(
      attrName,
      fc.oneof(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map((v) => ({
          stringValue: v,
          dataType: 'String',
        })),
        fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => ({
          binaryValue: Buffer.from(b).toString('base64'),
          dataType: 'Binary',
        })),
        fc.integer().map((n) => ({ stringValue: String(n), dataType: 'Number.int' })),
      ),
    ),
    { maxLength: 4 },
  ),
});

const { queue, dlq } = await createQueueWithDlq(sqs, `fz-${uid()}`, { visibilityTimeout: 30 });
afterAll(() => deleteQueues(sqs, queue.url, dlq.url));

it('1,000 fuzzed records: each dispatched, failed for retry, or dead-lettered with its reason', async () => {
  // A real record as the template: published with SqsBroker, received from moto.
  const broker = new SqsBroker({
    logger: false,
    maxDeliveries: MAX_DELIVERIES,
    unknownTarget: 'dead-letter',
    client: sqs,
    queue: queue.url,
  });
  await broker.publish({ template: true }, 'echo');
  const r = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queue.url,
      WaitTimeSeconds: 2,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
    }),
  );
  const template = toLambdaRecord(r.Messages![0]!, queue.arn);

  const dispatched = new Set<string>();
  broker.add('echo', (p) => {
    dispatched.add(p.messageId);
  });
  broker.add('boom', () => {
    throw new Error('boom');
  });
  const handler = lambdaHandler(broker);
  const ctx = lambdaContext();
  const expected = new Map<string, Expected>();
  const failed = new Set<string>();
  let records = 0;

  await fc.assert(
    fc.asyncProperty(fc.array(specArb, { minLength: 10, maxLength: 10 }), async (specs) => {
      const batch: SqsRecord[] = specs.map((s) => {
        const messageId = randomUUID();
        expected.set(messageId, model(s));
        const messageAttributes: SqsRecord['messageAttributes'] = {};
        for (const [k, v] of s.extra) messageAttributes[k] = v;
        const str = (v: string) => ({ stringValue: v, dataType: 'String' });
        if (s.target !== undefined) messageAttributes.target = str(s.target);
        if (s.contentType !== undefined) messageAttributes.content_type = str(s.contentType);
        if (s.replyTo !== undefined) messageAttributes.reply_to = str(s.replyTo);
        if (s.body.encoding) messageAttributes.body_encoding = str(s.body.encoding);
        return {
          ...template,
          messageId,
          body: s.body.text,
          messageAttributes,
          attributes: { ...template.attributes, ApproximateReceiveCount: String(s.receiveCount) },
        };
      });
      records += batch.length;
      const res = await handler({ Records: batch }, ctx);
      for (const f of res!.batchItemFailures) {
        expect(batch.some((b) => b.messageId === f.itemIdentifier)).toBe(true);
        failed.add(f.itemIdentifier);
      }
    }),
    { numRuns: 100, endOnFailure: true },
  );
  expect(records).toBe(1000);

  const dead = new Map<string, string>();
  for (const m of await drain(sqs, dlq.url, { waitTimeSeconds: 1 })) {
    const d = readDeadLetter(m);
    expect(dead.has(d.messageId), `dead-lettered twice: ${d.messageId}`).toBe(false);
    dead.set(d.messageId, d.reason.code);
  }

  const tally = { dispatched: 0, retry: 0, dead: 0 };
  for (const [id, want] of expected) {
    const got: Expected = dispatched.has(id)
      ? 'dispatched'
      : failed.has(id)
        ? 'retry'
        : dead.has(id)
          ? { dead: dead.get(id)! }
          : ('lost' as never);
    expect(got, `record ${id}`).toEqual(want);
    const outcomes = [dispatched.has(id), failed.has(id), dead.has(id)].filter(Boolean).length;
    expect(outcomes, `record ${id} ended ${outcomes} ways`).toBe(1);
    if (got === 'dispatched') tally.dispatched++;
    else if (got === 'retry') tally.retry++;
    else tally.dead++;
  }
  console.log(`fuzz: 1000 records → ${JSON.stringify(tally)}`);
  expect(tally.dispatched + tally.retry + tally.dead).toBe(1000);
  expect(Math.min(tally.dispatched, tally.retry, tally.dead)).toBeGreaterThan(20);
}, 240_000);
