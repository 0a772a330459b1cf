/**
 * The Worker the `cloudflare` tests run inside workerd (bundled by
 * test/emulators/cloudflare/setup.ts from the project's sources; `cloudmom/cloudflare` is
 * `adapters/cloudflare/index.ts`). Node cannot pull from a queue, so the tests drive it and
 * read what happened through `fetch` endpoints.
 *
 * Two modes (`env.MODE`):
 * - `handlers` (default): `queue()` on `MAIN_QUEUE` is `queueHandler(broker)`, with the
 *   handlers below running here, in workerd;
 * - `bridge`: `queue()` on `MAIN_QUEUE` holds each message until the test process settles it
 *   through `/bridge/pull` and `/bridge/settle` (the conformance suite's handlers are Node
 *   closures; see test/cloudflare/bridge.ts).
 * Batches of any other queue (dead letters, replies) are recorded raw (`/received`).
 *
 * Endpoints: `GET /runtime`, `POST /publish`, `POST /send-raw`, `GET /received`, `GET /seen`,
 * `GET /events`, `GET /logs`, `POST /bridge/pull`, `POST /bridge/settle`.
 */
import {
  CloudflareQueueBroker,
  type QueueBatch,
  type QueueBatchMessage,
  type QueueBinding,
  queueHandler,
} from 'cloudmom/cloudflare';
import { Broker } from '../../../src/broker.ts';
import { jsonCodec } from '../../../src/codec.ts';
import type { Logger } from '../../../src/log.ts';
import type { Properties } from '../../../src/options.ts';
import type { StandardSchema } from '../../../src/schema.ts';

interface Env {
  QUEUE: QueueBinding;
  DEAD_LETTERS?: QueueBinding;
  REPLIES?: QueueBinding;
  MODE?: 'handlers' | 'bridge';
  /** The consumed queue the broker (or the bridge) handles; others are only recorded. */
  MAIN_QUEUE?: string;
  MAX_DELIVERIES?: number;
  RETRY_BASE_MS?: number;
  /** Leave `logger` unset: the adapter's default (console without nodejs_compat). */
  DEFAULT_LOGGER?: boolean;
  /** Extra reply addresses to allow (allowed, but with no binding: sending there fails). */
  EXTRA_ALLOWED?: string[];
  /** How long the bridge holds an unsettled message before retrying it (ms). */
  LEASE_MS?: number;
}

// ---- what happened, for the tests ----

type Plain = Record<string, unknown>;
/** Messages of queues other than the main one, raw. */
const received: { queue: string; id: string; attempts: number; body: unknown }[] = [];
/** What handlers saw. */
const seen: { target: string; properties: Plain; body: unknown }[] = [];
/** Settle calls, reply sends, in the order they happened. */
const events: Plain[] = [];
const logs: { level: string; message: string; fields?: Plain }[] = [];

const logger: Logger = {
  debug: (message, fields) => logs.push({ level: 'debug', message, fields }),
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
};

function toBase64(b: Uint8Array): string {
  return (b as Uint8Array & { toBase64(): string }).toBase64();
}
function fromBase64(s: string): Uint8Array {
  return (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(s);
}
/** A body as JSON can carry it: bytes as `{ base64 }`. */
function plain(body: unknown): unknown {
  if (body instanceof ArrayBuffer) return { base64: toBase64(new Uint8Array(body)) };
  if (ArrayBuffer.isView(body))
    return { base64: toBase64(new Uint8Array(body.buffer, body.byteOffset, body.byteLength)) };
  return body;
}
function props(p: Properties): Plain {
  const { raw: _raw, publishedAt, ...rest } = p;
  return { ...rest, publishedAt: publishedAt?.toISOString() };
}

// ---- the broker and its handlers (mode `handlers`) ----

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Standard Schema without a library: `{ id: string }`. */
const idSchema: StandardSchema = {
  '~standard': {
    version: 1,
    vendor: 'cloudmom-test',
    validate: (v: unknown) =>
      typeof (v as { id?: unknown })?.id === 'string'
        ? { value: v }
        : { issues: [{ message: 'id must be a string', path: ['id'] }] },
  },
} as StandardSchema;

/** A producer binding that notes when a send resolved, then returns what the real one did. */
function observed(binding: QueueBinding, name: string): QueueBinding {
  return {
    async send(body, options) {
      const r = await binding.send(body, options);
      events.push({ event: 'sent', queue: name, count: 1 });
      return r;
    },
    async sendBatch(messages, options) {
      const list = [...messages];
      const r = await binding.sendBatch(list, options);
      events.push({ event: 'sent', queue: name, count: list.length });
      return r;
    },
  };
}

let broker: CloudflareQueueBroker | undefined;
function brokerFor(env: Env): CloudflareQueueBroker {
  if (broker) return broker;
  const b = new CloudflareQueueBroker({
    queue: observed(env.QUEUE, 'queue'),
    queueName: env.MAIN_QUEUE ?? 'q',
    ...(env.DEAD_LETTERS ? { deadLetterQueue: observed(env.DEAD_LETTERS, 'dead-letters') } : {}),
    ...(env.REPLIES ? { replyQueues: { replies: observed(env.REPLIES, 'replies') } } : {}),
    ...(env.EXTRA_ALLOWED ? { replyAllowList: ['replies', ...env.EXTRA_ALLOWED] } : {}),
    ...(env.DEFAULT_LOGGER ? {} : { logger }),
    maxDeliveries: env.MAX_DELIVERIES ?? 3,
    retry: { baseDelayMs: env.RETRY_BASE_MS ?? 1000, maxDelayMs: 60_000 },
  });
  const record = (p: Properties, body: unknown) => {
    seen.push({ target: p.target, properties: props(p), body: plain(body) });
  };
  b.add('record', (p, body) => {
    record(p, body);
  });
  b.add('echo', (p, body) => {
    record(p, body);
    return body;
  });
  b.add('flaky', (p, body: { okAt: number }) => {
    record(p, body);
    if (p.deliveryCount < body.okAt) throw new Error(`attempt ${p.deliveryCount} fails`);
  });
  b.add('fail', (p, body) => {
    record(p, body);
    throw new TypeError('database unreachable');
  });
  b.add('slow', async (p, body: { ms: number }) => {
    await sleep(body.ms);
    record(p, body);
  });
  b.add('typed', record, { schema: idSchema });
  b.add(
    'ask',
    (p, body: number) => {
      record(p, body);
      return body * 2;
    },
    'answer',
  );
  b.add('answer', record);
  broker = b;
  return b;
}

/** The batch, with each settle call noted before it reaches the runtime. */
function watched(batch: QueueBatch): QueueBatch {
  const messages = batch.messages.map(
    (m): QueueBatchMessage => ({
      id: m.id,
      timestamp: m.timestamp,
      body: m.body,
      attempts: m.attempts,
      ack() {
        events.push({ event: 'ack', id: m.id, attempts: m.attempts });
        m.ack();
      },
      retry(options) {
        events.push({ event: 'retry', id: m.id, attempts: m.attempts, ...options });
        m.retry(options);
      },
    }),
  );
  return {
    queue: batch.queue,
    messages,
    ackAll() {
      events.push({ event: 'ackAll' });
      batch.ackAll();
    },
    retryAll(options) {
      events.push({ event: 'retryAll', ...options });
      batch.retryAll(options);
    },
  };
}

// ---- the bridge (mode `bridge`) ----

interface Held {
  readonly lease: string;
  readonly message: QueueBatchMessage;
  readonly queue: string;
  leased: boolean;
  /** Hands the decision to the `queue()` invocation, which alone may settle the message. */
  decide(how: { ack: true } | { retry: number }): void;
}
const held = new Map<string, Held>();
let wake: (() => void) | undefined;

/**
 * Holds each message of the batch until the test process decides; the settle call itself runs
 * here, in the `queue()` invocation (workerd refuses `ack()` from another request's context).
 */
async function bridgeBatch(batch: QueueBatch, env: Env): Promise<void> {
  const leaseMs = env.LEASE_MS ?? 5000;
  const decided = batch.messages.map(async (message) => {
    const lease = crypto.randomUUID();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const how = await new Promise<{ ack: true } | { retry: number }>((resolve) => {
      held.set(lease, { lease, message, queue: batch.queue, leased: false, decide: resolve });
      // Not settled in time (the test process went away): back to the queue.
      timer = setTimeout(() => resolve({ retry: 0 }), leaseMs);
    });
    clearTimeout(timer);
    held.delete(lease);
    if ('ack' in how) message.ack();
    else message.retry({ delaySeconds: how.retry });
  });
  wake?.();
  await Promise.all(decided);
}

async function bridgePull(request: Request): Promise<Response> {
  const { max, waitMs } = (await request.json()) as { max: number; waitMs: number };
  const deadline = Date.now() + waitMs;
  for (;;) {
    const out: Plain[] = [];
    for (const h of held.values()) {
      if (out.length >= max) break;
      if (h.leased) continue;
      h.leased = true;
      const m = h.message;
      out.push({
        lease: h.lease,
        queue: h.queue,
        id: m.id,
        timestamp: m.timestamp.getTime(),
        attempts: m.attempts,
        body: plain(m.body),
        kind: typeof m.body === 'string' ? 'text' : plain(m.body) === m.body ? 'json' : 'bytes',
      });
    }
    if (out.length > 0 || Date.now() >= deadline) return Response.json(out);
    await new Promise<void>((r) => {
      const t = setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now())));
      wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }
}

async function bridgeSettle(request: Request): Promise<Response> {
  const { acks = [], retries = [] } = (await request.json()) as {
    acks?: string[];
    retries?: { lease: string; delaySeconds: number }[];
  };
  let settled = 0;
  for (const lease of acks) {
    const h = held.get(lease);
    if (h) {
      held.delete(lease);
      h.decide({ ack: true });
      settled++;
    }
  }
  for (const r of retries) {
    const h = held.get(r.lease);
    if (h) {
      held.delete(r.lease);
      h.decide({ retry: r.delaySeconds });
      settled++;
    }
  }
  return Response.json({ settled });
}

// ---- endpoints ----

/** What the core needs of the runtime, as this Worker sees it. */
function runtimeFacts(): Record<string, string> {
  const g = globalThis as Record<string, unknown> & { process?: { stderr?: unknown } };
  return {
    process: typeof g.process,
    processStderr: typeof g.process?.stderr,
    randomUUID: typeof globalThis.crypto?.randomUUID,
    TextEncoder: typeof TextEncoder,
    TextDecoder: typeof TextDecoder,
    setImmediate: typeof g.setImmediate,
    queueMicrotask: typeof queueMicrotask,
    AbortSignalTimeout: typeof AbortSignal.timeout,
    Buffer: typeof g.Buffer,
    btoa: typeof btoa,
    toBase64: typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64,
    core:
      typeof Broker === 'function' && typeof jsonCodec.encode === 'function' ? 'loaded' : 'missing',
  };
}

function errorJson(err: unknown): Response {
  const e = err as Error & { code?: string; size?: number; limit?: number };
  return Response.json(
    { error: { name: e.name, code: e.code, message: e.message, size: e.size, limit: e.limit } },
    { status: 400 },
  );
}

async function publish(request: Request, env: Env): Promise<Response> {
  const p = (await request.json()) as {
    body?: unknown;
    bodyBase64?: string;
    target: string;
    options?: Record<string, unknown>;
    /** Publish this many at once (`Promise.all`: the core batches them); objects get `i`. */
    copies?: number;
  };
  const body = p.bodyBase64 !== undefined ? fromBase64(p.bodyBase64) : p.body;
  try {
    const b = brokerFor(env);
    const ids = await Promise.all(
      Array.from({ length: p.copies ?? 1 }, (_, i) =>
        b.publish(
          p.copies && body !== null && typeof body === 'object' && !(body instanceof Uint8Array)
            ? { ...body, i }
            : body,
          p.target,
          p.options ?? {},
        ),
      ),
    );
    return Response.json({ messageId: ids[0], messageIds: ids });
  } catch (err) {
    return errorJson(err);
  }
}

async function sendRaw(request: Request, env: Env): Promise<Response> {
  const p = (await request.json()) as { body?: unknown; bodyBase64?: string; contentType: string };
  const body = p.bodyBase64 !== undefined ? fromBase64(p.bodyBase64) : p.body;
  try {
    await env.QUEUE.send(body, { contentType: p.contentType as 'json' });
    return Response.json({ ok: true });
  } catch (err) {
    return errorJson(err);
  }
}

async function request(env: Env): Promise<Response> {
  try {
    await brokerFor(env).request('x', 'echo', { timeoutMs: 1000 });
    return Response.json({ ok: true });
  } catch (err) {
    return errorJson(err);
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    switch (url.pathname) {
      case '/runtime':
        return Response.json(runtimeFacts());
      case '/publish':
        return publish(req, env);
      case '/send-raw':
        return sendRaw(req, env);
      case '/request':
        return request(env);
      case '/start':
        await brokerFor(env).start();
        return Response.json({ ok: true });
      case '/received':
        return Response.json(received);
      case '/seen':
        return Response.json(seen);
      case '/events':
        return Response.json(events);
      case '/logs':
        return Response.json(logs);
      case '/stats':
        return Response.json(brokerFor(env).stats);
      case '/bridge/pull':
        return bridgePull(req);
      case '/bridge/settle':
        return bridgeSettle(req);
      default:
        return new Response('not found', { status: 404 });
    }
  },

  async queue(batch: QueueBatch, env: Env, ctx: unknown): Promise<void> {
    if (batch.queue === (env.MAIN_QUEUE ?? 'q')) {
      if (env.MODE === 'bridge') return bridgeBatch(batch, env);
      return queueHandler(brokerFor(env))(watched(batch), env, ctx);
    }
    for (const m of batch.messages) {
      received.push({ queue: batch.queue, id: m.id, attempts: m.attempts, body: plain(m.body) });
      m.ack();
    }
  },
};
