/**
 * Bad input at both entrypoints: 1,000 generated envelopes each (fast-check, fixed seed) —
 * bad base64, missing or ill-typed attributes, odd targets and content types, odd delivery
 * attempts, oversize data, envelopes that are not envelopes. Nothing crashes, and each
 * delivery is exactly one of: dispatched to its handler (2xx), failed for retry (500, only
 * for the failing target before its last attempt), or dead-lettered with its reason (2xx,
 * found in the dead-letter topic by its message id).
 */
import { createServer } from 'node:http';
import * as functions from '@google-cloud/functions-framework';
import type { PubSubBroker } from 'cloudmom/gcp';
import { cloudEventHandler, pushHandler } from 'cloudmom/gcp';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorClient, type Topology, topology, until } from './fixture.ts';
import { listen, type Mode, post, type Served, serveFunction } from './http.ts';

const client = emulatorClient();
const RUNS = 1000;
const MAX_DATA = 4096;
const SEED = Number(process.env.FUZZ_SEED ?? 20261127);
const CODES = new Set([
  'handler-failed',
  'max-deliveries',
  'undecodable',
  'missing-target',
  'schema-invalid',
  'unknown-target',
  'reply-not-allowed',
  'reply-failed',
]);

/** One generated delivery; `idKind` says whether it carries a usable message id. */
interface Case {
  readonly envelope: unknown;
  readonly id: string | undefined;
  readonly target: unknown;
  readonly attempt: unknown;
}

let counter = 0;
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

function cases(prefix: string): fc.Arbitrary<Case> {
  const data = fc.oneof(
    fc.uint8Array({ maxLength: 256 }).map(b64),
    {
      arbitrary: fc.jsonValue().map((v) => b64(Buffer.from(JSON.stringify(v) ?? 'null'))),
      weight: 6,
    },
    fc.string({ maxLength: 64 }), // mostly not base64
    fc.constantFrom('====', 'YQ', 'YQ=', 'Y', '@@@@', 'YWJj\nZA==', ' YWJj'),
    fc.integer({ min: MAX_DATA + 1, max: MAX_DATA * 2 }).map((n) => b64(new Uint8Array(n))),
    fc.constant(undefined),
    fc.oneof(fc.integer(), fc.constant(null), fc.object()) as fc.Arbitrary<unknown>,
  );
  const target = fc.oneof(
    fc.constantFrom('ok', 'ok', 'ok', 'fail', 'fail'),
    fc.constantFrom('', ' ', 'ok ', 'OK', 'reply', '../ok', 'ünï', 'x'.repeat(1500)),
    fc.string({ maxLength: 20 }),
    fc.constant(undefined),
    fc.oneof(fc.integer(), fc.constant(null)) as fc.Arbitrary<unknown>,
  );
  const contentType = fc.oneof(
    { arbitrary: fc.constant('application/json'), weight: 4 },
    fc.constantFrom(
      'application/json',
      'text/plain; charset=utf-8',
      'application/octet-stream',
      'garbage/type',
    ),
    fc.constant(undefined),
  );
  const attempt = fc.oneof(
    fc.constant(undefined),
    fc.integer({ min: 1, max: 5 }),
    fc.constantFrom(-1, 0, 2.5, '2', 'abc', null),
  );
  const idKind = fc.constantFrom('ok', 'ok', 'ok', 'ok', 'missing', 'empty', 'number');
  const headers = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string(), {
    maxKeys: 3,
  });
  const shape = fc.constantFrom('good', 'good', 'normal', 'normal', 'normal', 'badAttrs', 'weird');
  const good = fc.record({ target: fc.constantFrom('ok', 'ok', 'fail'), body: fc.jsonValue() });
  return fc
    .record({
      data,
      target,
      contentType,
      attempt,
      idKind,
      headers,
      shape,
      good,
      junk: fc.anything(),
    })
    .map((r) => {
      if (r.shape === 'good') {
        // A well-formed message (with random headers and delivery attempt).
        r.idKind = 'ok';
        r.target = r.good.target;
        r.contentType = 'application/json';
        r.data = b64(Buffer.from(JSON.stringify(r.good.body) ?? 'null'));
      }
      const id = r.idKind === 'ok' ? `${prefix}-${counter++}` : undefined;
      const idValue = { ok: id, missing: undefined, empty: '', number: 42 }[r.idKind];
      if (r.shape === 'weird')
        return { envelope: r.junk, id: undefined, target: undefined, attempt: undefined };
      const attributes: Record<string, unknown> = { ...r.headers };
      if (r.target !== undefined) attributes.target = r.target;
      if (r.contentType !== undefined) attributes.content_type = r.contentType;
      const message: Record<string, unknown> = {
        ...(r.data !== undefined ? { data: r.data } : {}),
        attributes: r.shape === 'badAttrs' ? ['not', 'an', 'object'] : attributes,
        ...(idValue !== undefined ? { messageId: idValue } : {}),
        publishTime: new Date().toISOString(),
      };
      return {
        envelope: {
          message,
          subscription: 'projects/p/subscriptions/s',
          ...(r.attempt !== undefined ? { deliveryAttempt: r.attempt } : {}),
        },
        id: typeof idValue === 'string' && idValue !== '' ? idValue : undefined,
        target: r.shape === 'badAttrs' ? undefined : r.target,
        attempt: r.attempt,
      };
    });
}

describe('fuzzing the entrypoints (1,000 envelopes each)', () => {
  let t: Topology;
  let broker: PubSubBroker;
  const handled = new Map<string, number>();
  const servers: Served[] = [];
  let push: Served;
  let cloudEvent: Served;

  beforeAll(async () => {
    t = await topology(client);
    broker = t.broker({
      subscription: undefined,
      logger: false,
      maxDeliveries: 3,
      unknownTarget: 'dead-letter',
    });
    broker.add('ok', (p) => {
      handled.set(p.messageId, (handled.get(p.messageId) ?? 0) + 1);
    });
    broker.add('fail', () => {
      throw new Error('handler refuses');
    });
    push = await listen(createServer(pushHandler(broker, { maxDataBytes: MAX_DATA })));
    functions.cloudEvent('fuzz', cloudEventHandler(broker, { maxDataBytes: MAX_DATA }));
    cloudEvent = await serveFunction('fuzz');
    servers.push(push, cloudEvent);
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await broker.stop();
    await t.cleanup();
  });

  for (const entry of ['push', 'cloudEvent'] as const) {
    it(`${entry}: no crash; each delivery dispatched, retried, or dead-lettered with its reason`, async () => {
      const samples = fc.sample(cases(entry), { numRuns: RUNS, seed: SEED });
      const results: { c: Case; status: number }[] = [];
      const url = entry === 'push' ? push.url : cloudEvent.url;
      for (let i = 0; i < samples.length; i += 25) {
        const chunk = samples.slice(i, i + 25);
        const statuses = await Promise.all(
          chunk.map(async (c, j) => {
            const mode: Mode = entry === 'push' ? 'push' : (i + j) % 2 ? 'binary' : 'structured';
            const res = await post(url, mode, undefined, { raw: c.envelope });
            await res.arrayBuffer();
            return res.status;
          }),
        );
        for (const [j, c] of chunk.entries()) results.push({ c, status: statuses[j]! });
      }
      // The servers still answer.
      expect((await fetch(push.url)).status).toBe(405);

      const tally = {
        dispatched: 0,
        retried: 0,
        deadLettered: 0,
        anonymousDeadLetters: 0,
        refusedByFramework: 0,
      };
      const byId = () => {
        const m = new Map<string, Record<string, string>>();
        for (const d of t.deadLetters) {
          const id = d.attributes.message_id;
          if (id) m.set(id, d.attributes);
        }
        return m;
      };
      for (const { c, status } of results) {
        if (entry === 'cloudEvent' && status === 400) {
          // The functions-framework's JSON body parser (strict) refuses a binary-mode body
          // that is a bare JSON value before the function runs; Eventarc never sends one.
          expect(c.envelope === null || typeof c.envelope !== 'object').toBe(true);
          tally.refusedByFramework++;
          continue;
        }
        const ok = status >= 200 && status < 300;
        expect(
          [204, 200, 500],
          `status for ${JSON.stringify(c.envelope)?.slice(0, 300)}`,
        ).toContain(status);
        if (!ok) {
          // Only a failing handler before its last attempt asks for redelivery.
          expect(c.target, JSON.stringify(c.envelope)?.slice(0, 300)).toBe('fail');
          tally.retried++;
          continue;
        }
        if (c.id !== undefined && handled.has(c.id)) {
          expect(c.target).toBe('ok');
          tally.dispatched++;
          continue;
        }
        if (c.id === undefined) {
          tally.anonymousDeadLetters++;
          continue;
        }
        const attrs = await until(`the dead letter of ${c.id}`, () => byId().get(c.id!), 10_000);
        expect(CODES.has(attrs.dead_letter_reason!), attrs.dead_letter_reason).toBe(true);
        expect(attrs.dead_letter_description).toBeTruthy();
        tally.deadLettered++;
      }
      // Envelopes without a usable id are dead-lettered under a generated id.
      const prefixAnon = () =>
        t.deadLetters.filter((d) => d.attributes.message_id?.startsWith('invalid-')).length;
      const before = entry === 'push' ? 0 : anonymousSoFar;
      await until('the anonymous dead letters', () =>
        prefixAnon() >= before + tally.anonymousDeadLetters ? true : undefined,
      );
      anonymousSoFar = prefixAnon();
      expect(
        tally.dispatched +
          tally.retried +
          tally.deadLettered +
          tally.anonymousDeadLetters +
          tally.refusedByFramework,
      ).toBe(RUNS);
      // Every kind of outcome was exercised.
      expect(tally.dispatched).toBeGreaterThan(50);
      expect(tally.retried).toBeGreaterThan(10);
      expect(tally.deadLettered).toBeGreaterThan(100);
      expect([...handled.values()].every((n) => n === 1)).toBe(true);
      console.log(`fuzz ${entry}: ${JSON.stringify(tally)}`);
    }, 120_000);
  }
});

let anonymousSoFar = 0;
