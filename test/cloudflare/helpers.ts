/**
 * Shared by the `cloudflare` tests: a Miniflare instance running the test Worker (see
 * worker/index.ts) with the usual queues, and small helpers to call it and wait.
 */
import { readFileSync } from 'node:fs';
import type { Miniflare, MiniflareOptions } from 'miniflare';
import { inject } from 'vitest';
import { startWorker } from '../emulators/cloudflare/workerd.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Queue names of the usual topology. */
export const QUEUES = { main: 'q', deadLetters: 'dlq', replies: 'replies', native: 'dlq-native' };

type Consumer =
  NonNullable<MiniflareOptions['queueConsumers']> extends Record<string, infer C> | (infer _A)[]
    ? C
    : never;

export interface WorkerSetup {
  /** Worker variables (`env.MODE`, `env.MAX_DELIVERIES`...). */
  readonly bindings?: Record<string, unknown>;
  /** The main queue's consumer settings (Miniflare names). */
  readonly consumer?: Partial<Exclude<Consumer, string>>;
  readonly compatibilityFlags?: string[];
  /** Leave out the dead-letter producer binding. */
  readonly noDeadLetters?: boolean;
  /** Further Miniflare options (e.g. `handleRuntimeStdio` to read the Worker's console). */
  readonly miniflare?: Partial<MiniflareOptions>;
}

/** The test Worker in workerd: main queue `q`, dead letters `dlq`, replies `replies`. */
export async function testWorker(setup: WorkerSetup = {}): Promise<TestWorker> {
  const fast = { maxBatchSize: 100, maxBatchTimeout: 0.05 };
  const mf = await startWorker({
    script: readFileSync(inject('cloudflareWorkerBundle'), 'utf8'),
    compatibilityFlags: setup.compatibilityFlags ?? [],
    bindings: { MAIN_QUEUE: QUEUES.main, ...setup.bindings },
    queueProducers: {
      QUEUE: { queueName: QUEUES.main },
      ...(setup.noDeadLetters ? {} : { DEAD_LETTERS: { queueName: QUEUES.deadLetters } }),
      REPLIES: { queueName: QUEUES.replies },
    },
    queueConsumers: {
      [QUEUES.main]: { ...fast, maxRetries: 10, deadLetterQueue: QUEUES.native, ...setup.consumer },
      [QUEUES.deadLetters]: fast,
      [QUEUES.replies]: fast,
      [QUEUES.native]: fast,
    },
    ...setup.miniflare,
  } as MiniflareOptions);
  return new TestWorker(mf);
}

export class TestWorker {
  readonly mf: Miniflare;
  constructor(mf: Miniflare) {
    this.mf = mf;
  }

  async get<T = any>(path: string): Promise<T> {
    const res = await this.mf.dispatchFetch(`http://worker${path}`);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Error(`the Worker answered ${res.status}: ${text.slice(0, 500)}`);
    }
  }

  async post<T = any>(path: string, body: unknown): Promise<T> {
    const res = await this.mf.dispatchFetch(`http://worker${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Error(`the Worker answered ${res.status}: ${text.slice(0, 500)}`);
    }
  }

  /** `broker.publish()` inside the Worker; resolves to the answer (`messageId` or `error`). */
  publish(
    body: unknown,
    target: string,
    options: Record<string, unknown> = {},
    extra: Record<string, unknown> = {},
  ) {
    const b =
      body instanceof Uint8Array ? { bodyBase64: Buffer.from(body).toString('base64') } : { body };
    return this.post<{
      messageId?: string;
      messageIds?: string[];
      error?: { name: string; code: string; message: string; size?: number; limit?: number };
    }>('/publish', { ...b, target, options, ...extra });
  }

  /** A raw `env.QUEUE.send(body, { contentType })` inside the Worker (no envelope). */
  sendRaw(body: unknown, contentType: 'json' | 'text' | 'bytes' | 'v8') {
    const b =
      body instanceof Uint8Array ? { bodyBase64: Buffer.from(body).toString('base64') } : { body };
    return this.post('/send-raw', { ...b, contentType });
  }

  /** Raw messages of a queue other than the main one. */
  async received(queue: string): Promise<{ id: string; attempts: number; body: any }[]> {
    return (
      await this.get<{ queue: string; id: string; attempts: number; body: any }[]>('/received')
    ).filter((m) => m.queue === queue);
  }

  seen(target?: string): Promise<{ target: string; properties: any; body: any }[]> {
    return this.get<{ target: string; properties: any; body: any }[]>('/seen').then((all) =>
      target === undefined ? all : all.filter((s) => s.target === target),
    );
  }

  events(): Promise<Record<string, any>[]> {
    return this.get('/events');
  }

  dispose(): Promise<void> {
    return this.mf.dispose();
  }
}

/** Polls `probe` until it answers something (not undefined/false/empty array). */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0)) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}
