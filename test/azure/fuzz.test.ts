/**
 * Bad input at the entrypoint: 1,000 generated invocations (fast-check) of azureFunctionHandler,
 * plain and SDK-type binding, cardinality one and many, with odd trigger metadata, missing
 * subjects, undecodable and unencodable bodies, oversize replies, foreign reply addresses and
 * failing handlers. Replies that are allowed go to the peer.
 *
 * Properties: the handler never crashes (a plain invocation either resolves or throws a
 * CloudmomError for the host to abandon); with the SDK binding every message is settled exactly
 * once — completed, abandoned (failed for retry) or dead-lettered with a cloudmom reason — and
 * the outcome is the expected one for what the message carried.
 */

import { InvocationContext } from '@azure/functions';
import { CloudmomError } from 'cloudmom';
import { azureFunctionHandler, ServiceBusBroker } from 'cloudmom/azure';
import fc from 'fast-check';
import { afterAll, describe, expect, inject, it } from 'vitest';

const connectionString = inject('serviceBusConnectionString');
const MAX_DELIVERIES = 3;
const broker = new ServiceBusBroker({
  connectionString,
  logger: false,
  maxDeliveries: MAX_DELIVERIES,
  replyAllowList: ['fuzz-replies'],
});
broker.add('echo', (_p, body) => body);
broker.add('boom', () => {
  throw new Error('handler failed');
});
broker.add('quiet', () => undefined);
afterAll(() => broker.stop());

const handler = azureFunctionHandler(broker);

type Kind = 'json' | 'text' | 'bytes' | 'bad-json' | 'unencodable' | 'oversize' | 'missing';
interface Case {
  target: string | undefined;
  kind: Kind;
  replyTo: string | undefined;
  deliveryCount: number;
  props: unknown;
  messageId: unknown;
}

const big = 'x'.repeat(300 * 1024);
function body(kind: Kind, seed: unknown): { value: unknown; contentType?: string } {
  switch (kind) {
    case 'json':
      return { value: Buffer.from(JSON.stringify(seed ?? null)), contentType: 'application/json' };
    case 'text':
      return { value: `text ${typeof seed}`, contentType: 'text/plain; charset=utf-8' };
    case 'bytes':
      return {
        value: Buffer.from([0xff, 0xfe, 0x00, 0x80]),
        contentType: 'application/octet-stream',
      };
    case 'bad-json':
      return { value: Buffer.from('{"unterminated'), contentType: 'application/json' };
    case 'unencodable':
      return { value: { n: 10n }, contentType: 'application/json' };
    case 'oversize':
      return { value: big, contentType: 'text/plain; charset=utf-8' };
    case 'missing':
      return { value: undefined };
  }
}

/** What must happen to a message (with the SDK binding). */
function expected(c: Case): string {
  if (c.kind === 'unencodable') return 'deadletter undecodable';
  if (c.target === undefined || c.target === '') return 'deadletter missing-target';
  const known = ['echo', 'boom', 'quiet'].includes(c.target);
  if (!known) return 'complete'; // discarded
  if (c.replyTo !== undefined && c.replyTo !== 'fuzz-replies')
    return 'deadletter reply-not-allowed';
  // No body and no content type: decoded as JSON (the default), which empty bytes are not.
  if (c.kind === 'bad-json' || c.kind === 'missing') return 'deadletter undecodable';
  if (c.target === 'boom')
    return c.deliveryCount >= MAX_DELIVERIES ? 'deadletter handler-failed' : 'abandon';
  if (c.target === 'echo' && c.kind === 'oversize' && c.replyTo !== undefined)
    return 'deadletter reply-failed';
  return 'complete';
}

const oddProps = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.constant([1, 2]),
  fc.constant('not an object'),
  fc.dictionary(
    fc.string({ maxLength: 12 }),
    fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant({ nested: { Deep: 1 } }),
      fc.date({ noInvalidDate: true }),
    ),
    { maxKeys: 5 },
  ),
);

const aCase: fc.Arbitrary<Case> = fc.record({
  target: fc.oneof(
    fc.constantFrom('echo', 'boom', 'quiet', 'nobody'),
    fc.constant(undefined),
    fc.string({ maxLength: 10 }),
  ) as fc.Arbitrary<string | undefined>,
  kind: fc.constantFrom<Kind>(
    'json',
    'text',
    'bytes',
    'bad-json',
    'unencodable',
    'oversize',
    'missing',
  ),
  replyTo: fc.constantFrom(undefined, 'fuzz-replies', 'attacker-queue'),
  deliveryCount: fc.integer({ min: 1, max: 5 }),
  props: oddProps,
  messageId: fc.oneof(fc.uuid(), fc.constant(undefined), fc.integer(), fc.constant('')),
});

function sdkMessage(c: Case, i: number) {
  const { value, contentType } = body(c.kind, c.props);
  return {
    body: value,
    messageId: c.messageId ?? undefined,
    subject: c.target === '' ? undefined : c.target,
    contentType,
    replyTo: c.replyTo,
    correlationId: `corr-${i}`,
    deliveryCount: c.deliveryCount - 1, // raw AMQP count, as the extension hands it
    applicationProperties: c.props,
    lockToken: `lock-${i}`,
  };
}

function plainMetadata(cases: Case[], many: boolean, oddity: number): Record<string, unknown> {
  const one = (c: Case, i: number) => ({
    messageId: c.messageId,
    subject: c.target,
    contentType: body(c.kind, c.props).contentType,
    replyTo: c.replyTo,
    correlationId: `corr-${i}`,
    deliveryCount: oddity === 1 ? String(c.deliveryCount) : oddity === 2 ? -3 : c.deliveryCount,
    applicationProperties: c.props,
    enqueuedTimeUtc: oddity === 3 ? 'not a date' : new Date().toISOString(),
  });
  if (!many) return one(cases[0]!, 0);
  const rows = cases.map(one);
  const md: Record<string, unknown> = {};
  for (const k of Object.keys(rows[0]!)) {
    const arr = rows.map((r) => (r as Record<string, unknown>)[k]);
    // Oddity 4: arrays shorter than the batch.
    md[`${k}Array`] = oddity === 4 ? arr.slice(0, 1) : arr;
  }
  return md;
}

describe('azureFunctionHandler fuzz', () => {
  it('1,000 generated invocations: no crash; each message dispatched, failed for retry, or dead-lettered with its reason', async () => {
    let plainOk = 0;
    let plainThrown = 0;
    let settled = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(aCase, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 4 }),
        async (cases, sdk, many, oddity) => {
          const batch = many ? cases : cases.slice(0, 1);
          const context = new InvocationContext({
            invocationId: 'fuzz',
            triggerMetadata: sdk ? {} : plainMetadata(batch, many, oddity),
            logHandler: () => {},
          });
          if (sdk) {
            const log = new Map<string, string[]>();
            const note = (m: { lockToken: string }, what: string) =>
              log.set(m.lockToken, [...(log.get(m.lockToken) ?? []), what]);
            const actions = {
              complete: async (m: any) => note(m, 'complete'),
              abandon: async (m: any) => note(m, 'abandon'),
              deadletter: async (
                m: any,
                _p?: Uint8Array,
                reason?: string,
                description?: string,
              ) => {
                expect(description).toBeTruthy();
                note(m, `deadletter ${reason}`);
              },
            };
            const messages = batch.map(sdkMessage);
            await handler({ messages: many ? messages : messages[0], actions }, context);
            batch.forEach((c, i) => {
              expect(log.get(`lock-${i}`), JSON.stringify({ ...c, props: undefined })).toEqual([
                expected(c),
              ]);
              settled++;
            });
          } else {
            const inputs = batch.map((c) => body(c.kind, c.props).value);
            try {
              await handler(many ? inputs : inputs[0], context);
              plainOk++;
            } catch (err) {
              expect(err).toBeInstanceOf(CloudmomError);
              plainThrown++;
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
    expect(settled).toBeGreaterThan(500);
    expect(plainOk).toBeGreaterThan(20);
    expect(plainThrown).toBeGreaterThan(20);
  }, 180_000);
});
