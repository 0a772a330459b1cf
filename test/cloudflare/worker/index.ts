/**
 * The Worker the `cloudflare` tests run inside workerd (bundled by
 * test/emulators/cloudflare/setup.ts from the project's sources). Node cannot pull from a
 * queue, so the tests drive it and read what happened through `fetch` endpoints:
 *
 * - `GET /runtime`: what the core needs of the runtime (process, crypto, timers...);
 * - `POST /publish` `{ body? | bodyBase64?, target, options? }`: `broker.publish()` here;
 * - `GET /received`: every message a queue consumer of this Worker got, raw (`queue`, `id`,
 *   `attempts`, `body` — bytes as `{ base64 }`).
 */

import { CloudflareQueueBroker, type QueueBinding } from 'cloudmom/cloudflare';
import { Broker } from '../../../src/broker.ts';
import { jsonCodec } from '../../../src/codec.ts';
import type { Logger } from '../../../src/log.ts';

interface Env {
  QUEUE: QueueBinding;
  DEAD_LETTERS?: QueueBinding;
  REPLIES?: QueueBinding;
  /** Name of the consumed queue the broker dispatches (others are only recorded). */
  MAIN_QUEUE?: string;
}

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

/** Log lines, kept for `/logs` (the core's default logger needs `process.stderr`). */
const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
const logger: Logger = {
  debug: (message, fields) => logs.push({ level: 'debug', message, fields }),
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
};

let broker: CloudflareQueueBroker | undefined;
function brokerFor(env: Env): CloudflareQueueBroker {
  broker ??= new CloudflareQueueBroker({
    queue: env.QUEUE,
    ...(env.DEAD_LETTERS ? { deadLetterQueue: env.DEAD_LETTERS } : {}),
    ...(env.REPLIES ? { replyQueues: { replies: env.REPLIES } } : {}),
    logger,
  });
  return broker;
}

const received: { queue: string; id: string; attempts: number; body: unknown }[] = [];

function plain(body: unknown): unknown {
  if (body instanceof ArrayBuffer) return { base64: toBase64(new Uint8Array(body)) };
  if (ArrayBuffer.isView(body))
    return { base64: toBase64(new Uint8Array(body.buffer, body.byteOffset, body.byteLength)) };
  return body;
}
function toBase64(b: Uint8Array): string {
  return (b as Uint8Array & { toBase64(): string }).toBase64();
}
function fromBase64(s: string): Uint8Array {
  return (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(s);
}

async function publish(request: Request, env: Env): Promise<Response> {
  const p = (await request.json()) as {
    body?: unknown;
    bodyBase64?: string;
    target: string;
    options?: Record<string, unknown>;
  };
  const body = p.bodyBase64 !== undefined ? fromBase64(p.bodyBase64) : p.body;
  try {
    const messageId = await brokerFor(env).publish(body, p.target, p.options ?? {});
    return Response.json({ messageId });
  } catch (err) {
    const e = err as Error & { code?: string };
    return Response.json(
      { error: { name: e.name, code: e.code, message: e.message } },
      { status: 400 },
    );
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    switch (url.pathname) {
      case '/runtime':
        return Response.json(runtimeFacts());
      case '/publish':
        return publish(request, env);
      case '/received':
        return Response.json(received);
      case '/logs':
        return Response.json(logs);
      default:
        return new Response('not found', { status: 404 });
    }
  },

  async queue(batch: {
    queue: string;
    messages: readonly { id: string; attempts: number; body: unknown; ack(): void }[];
  }): Promise<void> {
    for (const m of batch.messages) {
      received.push({ queue: batch.queue, id: m.id, attempts: m.attempts, body: plain(m.body) });
      m.ack();
    }
  },
};
