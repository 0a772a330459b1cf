/**
 * Fuzzing `queueHandler` inside workerd (bundled by the global setup as `fuzz-worker`):
 * `GET /fuzz?runs=N&seed=S` runs fast-check here, in the Workers runtime, on generated batches
 * in the runtime's `MessageBatch` shape — bodies that are not envelopes, envelopes with odd
 * fields, bytes, oversize, odd `attempts` — through a real CloudflareQueueBroker whose
 * dead-letter copies and replies go through the Worker's producer bindings. Each message must
 * be settled exactly once, as an independent model of the contract says: acked after its
 * handler ran (or discarded), retried, or dead-lettered with the model's reason. Answers
 * `{ ok, runs, messages, outcomes, failure? }`.
 */
import {
  CloudflareQueueBroker,
  type QueueBatch,
  type QueueBinding,
  queueHandler,
} from 'cloudmom/cloudflare';
import fc from 'fast-check';

interface Env {
  QUEUE: QueueBinding;
  DEAD_LETTERS: QueueBinding;
  REPLIES: QueueBinding;
}

const MAX_DELIVERIES = 3;
const TARGETS = ['ok', 'echo', 'throws'];
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type Expected = 'handled' | 'discarded' | 'retry' | { dead: string };

/** A generated message: its raw body as the runtime would deliver it, and what must happen. */
interface Spec {
  body: unknown;
  attempts: number;
  expected: Expected;
}

function b64(bytes: Uint8Array): string {
  return (bytes as Uint8Array & { toBase64(): string }).toBase64();
}

/** What the contract says happens to an envelope-shaped body (independent of the adapter). */
function modelEnvelope(e: Record<string, unknown>, attempts: number): Expected {
  if (e.cloudmom !== 1) return { dead: 'undecodable' };
  const a = e.attributes;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) return { dead: 'undecodable' };
  if (Object.values(a).some((v) => typeof v !== 'string')) return { dead: 'undecodable' };
  const attrs = a as Record<string, string>;
  let bytes: Uint8Array | undefined;
  let text: string | undefined;
  if (typeof e.base64 === 'string') {
    try {
      bytes = Uint8Array.from(atob(e.base64), (c) => c.charCodeAt(0));
    } catch {
      return { dead: 'undecodable' };
    }
  } else if (typeof e.text === 'string') text = e.text;
  else if ('body' in e && e.body !== undefined) text = JSON.stringify(e.body);
  else return { dead: 'undecodable' };
  const target = attrs.target;
  if (target === undefined || target === '') return { dead: 'missing-target' };
  if (!TARGETS.includes(target)) return 'discarded';
  if (attrs.reply_to !== undefined && attrs.reply_to !== 'replies')
    return { dead: 'reply-not-allowed' };
  const type = (attrs.content_type ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  try {
    if (type === 'application/json')
      JSON.parse((text ?? strict.decode(bytes!)).replace(/^\ufeff/, ''));
    else if (type === 'text/plain') {
      if (text === undefined) strict.decode(bytes!);
    } else if (type !== 'application/octet-stream') throw new Error('no codec');
  } catch {
    return { dead: 'undecodable' };
  }
  const deliveryCount = Number.isInteger(attempts) ? Math.max(1, attempts) : 1;
  if (target === 'throws')
    return deliveryCount >= MAX_DELIVERIES ? { dead: 'handler-failed' } : 'retry';
  return 'handled';
}

const attemptsArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, Number.NaN, 100) },
);
const small = fc.string({ maxLength: 40 });
const attrName = fc.oneof(small, fc.constantFrom('x-tenant', 'traceparent', 'a.b', 'ü', ''));
const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'text/plain; charset=utf-8',
  'application/octet-stream',
  'text/csv',
  'APPLICATION/JSON',
);
const attributesArb = fc
  .record(
    {
      target: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...TARGETS, 'unknown', '') },
        { weight: 1, arbitrary: small },
      ),
      content_type: contentType,
      reply_to: fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom('replies', 'attacker', '') },
      ),
      message_id: fc.uuid(),
      correlation_id: small,
      extra: fc.dictionary(attrName, small, { maxKeys: 4 }),
    },
    { requiredKeys: ['message_id'] },
  )
  .map(({ extra, ...own }) => {
    const a: Record<string, unknown> = { ...extra };
    for (const [k, v] of Object.entries(own)) if (v !== undefined) a[k] = v;
    return a;
  });
const bodyField = fc.oneof(
  fc.record({ body: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ text: fc.oneof(small, fc.json({ maxDepth: 2 }), fc.constant('{not json')) }),
  fc.record({
    base64: fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map(b64),
      fc.constantFrom('%%%', 'AAE', '', '77u/e30='),
    ),
  }),
  fc.constant({}),
);
/** Envelopes, mostly well formed, with odd fields mixed in. */
const envelopeArb = fc
  .tuple(
    fc.oneof(
      { weight: 9, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.constantFrom(2, '1', null, 0) },
    ),
    fc.oneof(
      { weight: 9, arbitrary: attributesArb },
      { weight: 1, arbitrary: fc.constantFrom(null, [], 'x', { target: 7 }) },
    ),
    bodyField,
  )
  .map(([cloudmom, attributes, body]) => ({ cloudmom, attributes, ...body }));
/** What other producers put on a queue. */
const foreignArb = fc.oneof(
  fc
    .jsonValue({ maxDepth: 2 })
    .filter((v) => !(v !== null && typeof v === 'object' && 'cloudmom' in v)),
  fc.string({ maxLength: 80 }).map((s) => ({ text: s })),
  fc.uint8Array({ maxLength: 64 }).map((b) => ({ bytes: b })),
);

const specArb: fc.Arbitrary<Spec> = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: envelopeArb.map((e) => ({ envelope: e })) },
      { weight: 2, arbitrary: foreignArb.map((f) => ({ foreign: f })) },
      // oversize for any copy: 130–200 KB of text without a target (the copy is cut to fit)
      {
        weight: 1,
        arbitrary: fc.integer({ min: 130_000, max: 200_000 }).map((n) => ({
          envelope: {
            cloudmom: 1,
            attributes: { content_type: 'text/plain' },
            text: 'x'.repeat(n),
          },
        })),
      },
    ),
    attemptsArb,
  )
  .map(([kind, attempts]): Spec => {
    if ('envelope' in kind) {
      const e = kind.envelope as Record<string, unknown>;
      return { body: e, attempts, expected: modelEnvelope(e, attempts) };
    }
    const f = kind.foreign as unknown;
    if (f !== null && typeof f === 'object' && 'bytes' in f) {
      const bytes = (f as { bytes: Uint8Array }).bytes;
      return {
        body: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
        attempts,
        expected: { dead: 'undecodable' },
      };
    }
    if (f !== null && typeof f === 'object' && 'text' in f) {
      const t = (f as { text: string }).text;
      // a text body is an envelope only if its text is one (never, here)
      return { body: t, attempts, expected: { dead: 'undecodable' } };
    }
    return { body: f, attempts, expected: { dead: 'undecodable' } };
  });

/** Dead-letter copies seen, by message id (the original's). */
const copies = new Map<string, string>();

function watching(binding: QueueBinding, into: Map<string, string>): QueueBinding {
  const note = (body: unknown) => {
    const a = (body as { attributes?: Record<string, string> })?.attributes;
    if (a?.message_id) into.set(a.message_id, a.dead_letter_reason ?? '?');
  };
  return {
    async send(body, options) {
      note(body);
      return binding.send(body, options);
    },
    async sendBatch(messages, options) {
      const list = [...messages];
      for (const m of list) note(m.body);
      return binding.sendBatch(list, options);
    },
  };
}

async function fuzz(env: Env, runs: number, seed: number) {
  const ran = new Map<unknown, 'ok' | 'threw'>();
  const broker = new CloudflareQueueBroker({
    queue: env.QUEUE,
    deadLetterQueue: watching(env.DEAD_LETTERS, copies),
    replyQueues: { replies: env.REPLIES },
    maxDeliveries: MAX_DELIVERIES,
    logger: false,
  });
  broker.add('ok', (p) => {
    ran.set(p.raw, 'ok');
  });
  broker.add('echo', (p, body) => {
    ran.set(p.raw, 'ok');
    return body;
  });
  broker.add('throws', (p) => {
    ran.set(p.raw, 'threw');
    throw new Error('handler fails');
  });
  const handle = queueHandler(broker);
  let messages = 0;
  const outcomes: Record<string, number> = {};
  let serial = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(specArb, { minLength: 1, maxLength: 10 }), async (specs) => {
      copies.clear();
      // unique message ids (a copy is found by the original's id), without touching the values
      const bodies = specs.map((s) => {
        const e = s.body as { attributes?: Record<string, unknown> } | null;
        const a = e !== null && typeof e === 'object' ? e.attributes : undefined;
        if (a === null || typeof a !== 'object' || typeof a.message_id !== 'string') return s.body;
        return { ...e, attributes: { ...a, message_id: `mid-${++serial}` } };
      });
      const calls: string[][] = specs.map(() => []);
      const batchCalls: string[] = [];
      const batch: QueueBatch = {
        queue: 'fuzz',
        messages: specs.map((s, i) => ({
          id: `cf-${++serial}`,
          timestamp: new Date(),
          body: bodies[i],
          attempts: s.attempts,
          ack: () => calls[i]!.push('ack'),
          retry: (o) => {
            const d = o?.delaySeconds;
            if (d !== undefined && !(Number.isInteger(d) && d >= 0 && d <= 43_200))
              throw new Error(`bad delaySeconds ${d}`);
            calls[i]!.push('retry');
          },
        })),
        ackAll: () => batchCalls.push('ackAll'),
        retryAll: () => batchCalls.push('retryAll'),
      };
      await handle(batch); // must not throw
      if (batchCalls.length > 0) throw new Error(`batch-level calls: ${batchCalls}`);
      specs.forEach((s, i) => {
        const m = batch.messages[i]!;
        const c = calls[i]!;
        if (c.length !== 1) throw new Error(`message ${i} settled ${c.length} times: ${c}`);
        const e = s.expected;
        const key = typeof e === 'string' ? e : `dead:${e.dead}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        messages++;
        const idOf = () =>
          (bodies[i] as { attributes?: { message_id?: unknown } })?.attributes?.message_id;
        if (e === 'handled') {
          if (c[0] !== 'ack' || ran.get(m) !== 'ok')
            throw new Error(`message ${i}: expected handled, got ${c[0]} (ran: ${ran.get(m)})`);
        } else if (e === 'discarded') {
          if (c[0] !== 'ack' || ran.has(m)) throw new Error(`message ${i}: expected discarded`);
        } else if (e === 'retry') {
          if (c[0] !== 'retry' || ran.get(m) !== 'threw')
            throw new Error(`message ${i}: expected retry, got ${c[0]}`);
        } else {
          if (c[0] !== 'ack')
            throw new Error(`message ${i}: expected dead-letter (${e.dead}) then ack, got ${c[0]}`);
          // the copy carries the envelope's message_id, or the queue message id (not an envelope)
          const own = idOf();
          const reason =
            (typeof own === 'string' && own !== '' ? copies.get(own) : undefined) ??
            copies.get(m.id);
          if (reason !== e.dead)
            throw new Error(
              `message ${i}: expected a dead-letter copy with ${e.dead}, got ${reason} (body ${JSON.stringify(s.body).slice(0, 200)})`,
            );
        }
      });
    }),
    { numRuns: runs, seed, endOnFailure: true },
  );
  return { messages, outcomes };
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== '/fuzz') return new Response('not found', { status: 404 });
    const runs = Number(url.searchParams.get('runs') ?? 100);
    const seed = Number(url.searchParams.get('seed') ?? Date.now());
    try {
      const r = await fuzz(env, runs, seed);
      return Response.json({ ok: true, runs, seed, ...r });
    } catch (err) {
      return Response.json({
        ok: false,
        runs,
        seed,
        failure: String((err as Error)?.message ?? err).slice(0, 4000),
      });
    }
  },
  async queue(batch: QueueBatch): Promise<void> {
    for (const m of batch.messages) m.ack(); // dead letters and replies: drained
  },
};
