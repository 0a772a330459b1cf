/**
 * Log safety, shared by `test/<platform>/log-safety.test.ts`: a marker string is put in every
 * place message content travels (bodies, header values, correlation ids, values and keys a
 * schema refuses, an undecodable body) and sent through publish, `start()`, replies,
 * dead-lettering and each entrypoint; every log line written meanwhile — through the default
 * JSON logger (`jsonLogger(level)`) and anything else written to stderr — is captured, and none
 * may contain the marker. Run at `warn` (the default level) and at `debug` (everything).
 *
 * No vitest import: the Cloudflare test Worker (test/cloudflare/worker/log-safety.ts) bundles
 * the handlers from here into workerd.
 */
import { type Broker, type Codec, jsonLogger, type Logger, type LogLevel } from 'cloudmom';
import * as v from 'valibot';
import { z } from 'zod';

/** Put wherever content goes; must appear in no log line. */
export const MARKER = 'LOGLEAK-7e51c0d2';
/** Levels the tests run at: the default and the most verbose. */
export const LEVELS = ['warn', 'debug'] as const satisfies readonly LogLevel[];

/** A body carrying the marker as a value and as a key. */
export const markedBody = () => ({ secret: MARKER, [MARKER]: 1, list: [MARKER] });
/** Headers whose value is the marker. */
export const markedHeaders = () => ({ note: MARKER, [`x-${MARKER.toLowerCase()}`]: MARKER });
export const markedCorrelationId = () => `${MARKER}-${Math.random().toString(36).slice(2, 8)}`;

/** zod and valibot both refuse `markedBody()`: zod's message names the unknown key, valibot's quotes the value. */
const zodSchema = z.strictObject({ secret: z.number() });
const valibotSchema = v.strictObject({ secret: v.picklist(['a', 'b']) });

/** Targets of {@link addHandlers}; the ones that end dead-lettered. */
export const T = {
  ok: 'ls-ok',
  zod: 'ls-zod',
  valibot: 'ls-valibot',
  fails: 'ls-fails',
  echo: 'ls-echo',
  echoed: 'ls-echoed',
  json: 'ls-json',
} as const;
export const DEAD_TARGETS = [T.zod, T.valibot, T.fails, T.json] as const;

/**
 * Adds the handlers: `ok` acks, `zod`/`valibot` have schemas the marked body fails, `fails`
 * throws an error whose text has no marker (the log may name it; it never quotes the body),
 * `echo` replies with its body to `echoed` (or to the message's reply address), `json` is fed
 * undecodable JSON by {@link liar}.
 */
export function addHandlers<B extends Broker>(b: B): B {
  const noop = () => undefined;
  b.add(T.ok, noop);
  b.add(T.zod, noop, { schema: zodSchema });
  b.add(T.valibot, noop, { schema: valibotSchema });
  b.add(T.fails, () => {
    throw new Error('the handler refuses this message');
  });
  b.add(T.echo, (_p, body) => body, T.echoed);
  b.add(T.echoed, noop);
  b.add(T.json, noop);
  return b;
}

/** A codec that sends any string as "application/json" bytes as they are (to publish broken JSON). */
export const liarCodec: Codec = {
  contentType: 'application/json',
  encode: (s) => new TextEncoder().encode(String(s)),
  decode: (b) => b,
};
/** Broken JSON quoting the marker: V8's parse error quotes the start of its input. */
export const BROKEN_JSON = `{"${MARKER}": "${MARKER}`;

/**
 * Publishes the marked messages to every target of {@link addHandlers} through `b`, and the
 * broken JSON through `liar` (a broker with {@link liarCodec}). `extra` adds options (a group
 * key where the platform needs one). Resolves to the number published.
 */
export async function publishMarked(
  b: Broker,
  liar: Broker,
  extra: { groupKey?: string } = {},
): Promise<number> {
  const opts = () => ({
    ...extra,
    headers: markedHeaders(),
    correlationId: markedCorrelationId(),
  });
  for (const t of [T.ok, T.zod, T.valibot, T.fails, T.echo])
    await b.publish(markedBody(), t, opts());
  await b.publish(MARKER, T.ok, opts());
  await liar.publish(BROKEN_JSON, T.json, { ...opts(), contentType: 'application/json' });
  return 7;
}

/**
 * Captures every line written to stderr (where `jsonLogger` writes) while the test runs, sets
 * `CLOUDMOM_LOG_LEVEL` to `level` (what a broker built without `logger` uses), and hands out
 * `jsonLogger(level)` for brokers given one. `stop()` restores both and returns the lines.
 */
export function captureLogs(level: LogLevel): {
  readonly logger: Logger;
  readonly lines: string[];
  stop(): string[];
} {
  const lines: string[] = [];
  const write = process.stderr.write;
  const envLevel = process.env.CLOUDMOM_LOG_LEVEL;
  process.env.CLOUDMOM_LOG_LEVEL = level;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stderr.write;
  return {
    logger: jsonLogger(level),
    lines,
    stop() {
      process.stderr.write = write;
      if (envLevel === undefined) delete process.env.CLOUDMOM_LOG_LEVEL;
      else process.env.CLOUDMOM_LOG_LEVEL = envLevel;
      return lines;
    },
  };
}

/**
 * The assertion: the capture saw the dead-letter lines (so it works), and no line has the
 * marker. `deadLettered`: how many "message dead-lettered" lines at least.
 */
export function expectNoMarker(lines: readonly string[], deadLettered: number): void {
  const all = lines.join('').split('\n').filter(Boolean);
  const seen = all.filter((l) => l.includes('"message dead-lettered"')).length;
  if (seen < deadLettered)
    throw new Error(
      `expected at least ${deadLettered} "message dead-lettered" lines, got ${seen}:\n${all.join('\n')}`,
    );
  const leaks = all.filter((l) => l.includes(MARKER));
  if (leaks.length > 0) throw new Error(`log lines carry message content:\n${leaks.join('\n')}`);
}

/** Waits for `ok()` (polling), failing after `ms` with `what`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The broker path: `consumer` (built with `logger`, `maxDeliveries: 2`, a short retry) gets
 * the handlers and is started; the marked messages are published; the run waits until all
 * four dead letters, the echo's reply and the retried failure happened, then makes one
 * `request()` (its reply crosses the reply path with marked headers and body).
 */
export async function runBrokerPath(
  consumer: Broker,
  publisher: Broker,
  liar: Broker,
  extra: { groupKey?: string; request?: boolean } = {},
): Promise<void> {
  addHandlers(consumer);
  await consumer.start();
  await publishMarked(publisher, liar, { groupKey: extra.groupKey });
  await until(
    'the dead letters and the reply',
    () => consumer.stats.deadLettered >= DEAD_TARGETS.length && consumer.stats.repliesSent >= 1,
    30_000,
  );
  if (extra.request !== false) {
    const reply = await publisher.request(markedBody(), T.echo, {
      headers: markedHeaders(),
      timeoutMs: 20_000,
      ...(extra.groupKey ? { groupKey: extra.groupKey } : {}),
    });
    if ((reply.body as { secret?: string }).secret !== MARKER)
      throw new Error(`unexpected reply ${JSON.stringify(reply.body)}`);
  }
}
