/**
 * `cloudmom dlq list|show|redrive <url>`: the dead letters of the URL's queue or
 * subscription, through the transport's `openDeadLetters()`.
 *
 * Redrive re-sends each dead letter to where it came from — target, headers, correlation id,
 * reply address, group key and content type as they were, without the `dead_letter_*`
 * attributes (and the platform's own markers) — and deletes it only once the send was
 * accepted. A redrive killed midway therefore resumes with what is left (a message re-sent
 * but not yet deleted is sent again: at least once). A dead letter that fails is held (not
 * retried in the same run) and given back at the end.
 */
import { type Broker, defaultMeasure, INTERNALS } from '../broker.ts';
import { BYTES_TYPE } from '../codec.ts';
import { describeError } from '../log.ts';
import { setOwn } from '../publisher.ts';
import {
  type DeadLetters,
  type IncomingMessage,
  type OutgoingMessage,
  RESERVED_HEADERS,
  type Transport,
} from '../transport.ts';
import { parseBrokerUrl } from '../url.ts';
import { Semaphore } from '../util.ts';
import * as WIRE from '../wire-names.ts';
import { EXIT, intFlag, UsageError } from './args.ts';
import { brokerFor, type Context, withBroker } from './context.ts';
import { describeMessage, messageLine, println, progressBar } from './io.ts';

/** Counts of a redrive. */
export interface RedriveResult {
  moved: number;
  failed: number;
  /** Dry run: how many would have moved. */
  wouldMove: number;
  /** Up to 100 failures: message id and why (no content). */
  failures: { messageId: string; error: string }[];
}

/** Options of {@link redrive}. */
export interface RedriveOptions {
  /** At most this many dead letters. Default: all. */
  max?: number;
  /** Count (and report) what would move; move nothing. */
  dryRun?: boolean;
  /** Send here instead of `deadLetters.origin`. */
  to?: string;
  /** Receive/send loops at once. Default 4. */
  workers?: number;
  signal?: AbortSignal;
  /** After each step: done so far (moved + failed, or would move). */
  onProgress?(r: RedriveResult): void;
  /** Dry run: each message that would move. */
  onMessage?(m: IncomingMessage): void;
}

/** The message a dead letter is redriven as: its own attributes, no dead-letter ones. */
export function redriven(
  m: IncomingMessage,
  dl: DeadLetters,
  destination: string,
): OutgoingMessage {
  const headers: Record<string, string> = {};
  const markers = dl.markers ?? [];
  for (const k of Object.keys(m.headers)) {
    if (RESERVED_HEADERS.has(k) && k !== WIRE.traceparent) continue;
    if (markers.includes(k)) continue;
    setOwn(headers, k, m.headers[k]!);
  }
  const copyId = dl.copyId?.(m);
  return {
    body: m.body,
    target: m.target ?? '',
    messageId: m.messageId,
    contentType: m.contentType ?? BYTES_TYPE,
    headers,
    correlationId: m.correlationId,
    replyTo: m.replyTo,
    groupKey: m.groupKey,
    deduplicationId: copyId === undefined ? undefined : `redrive-${copyId}`.slice(0, 128),
    destination,
  };
}

/**
 * Moves dead letters back: receive a batch, re-send it (in transport batches), delete what was
 * accepted, hold what failed; at the end give back what is held.
 */
export async function redrive(
  transport: Transport,
  dl: DeadLetters,
  options: RedriveOptions = {},
): Promise<RedriveResult> {
  const result: RedriveResult = { moved: 0, failed: 0, wouldMove: 0, failures: [] };
  const destination = options.to ?? dl.origin;
  const source = dl.source;
  const caps = transport.capabilities;
  const measure = caps.measure ?? defaultMeasure;
  const failedIds = new Set<string>();
  const held: unknown[] = [];
  const signal = options.signal ?? new AbortController().signal;
  let reserved = 0;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const keyOf = (m: IncomingMessage) => dl.copyId?.(m) ?? m.messageId;
  const fail = (m: IncomingMessage, error: string) => {
    result.failed++;
    failedIds.add(keyOf(m));
    held.push(m.ackId);
    if (result.failures.length < 100) result.failures.push({ messageId: m.messageId, error });
  };

  const sendAll = async (batch: IncomingMessage[]) => {
    // transport batches: by count and bytes
    const chunks: { out: OutgoingMessage[]; ins: IncomingMessage[] }[] = [];
    let cur = { out: [] as OutgoingMessage[], ins: [] as IncomingMessage[] };
    let bytes = 0;
    for (const m of batch) {
      if (!m.target) {
        fail(m, 'it carries no target (it can never be handled): left in the dead-letter queue');
        continue;
      }
      const truncated = dl.reason(m)?.truncatedFrom;
      if (truncated !== undefined) {
        fail(m, `its body was cut when it was dead-lettered (from ${truncated} bytes): left as is`);
        continue;
      }
      const out = redriven(m, dl, destination);
      try {
        transport.validate?.(out);
      } catch (err) {
        fail(m, describeError(err));
        continue;
      }
      const size = measure(out);
      if (
        cur.out.length > 0 &&
        (cur.out.length >= caps.maxBatchMessages || bytes + size > caps.maxBatchBytes)
      ) {
        chunks.push(cur);
        cur = { out: [], ins: [] };
        bytes = 0;
      }
      cur.out.push(out);
      cur.ins.push(m);
      bytes += size;
    }
    if (cur.out.length > 0) chunks.push(cur);
    const sent: IncomingMessage[] = [];
    await Promise.all(
      chunks.map(async ({ out, ins }) => {
        let outcomes: Awaited<ReturnType<Transport['send']>>;
        try {
          outcomes = await transport.send(out);
        } catch (err) {
          outcomes = out.map(() => ({ ok: false, error: err }));
        }
        ins.forEach((m, i) => {
          const o = outcomes[i];
          if (o?.ok) sent.push(m);
          else fail(m, `re-sending failed: ${describeError(o?.error ?? 'no outcome')}`);
        });
      }),
    );
    const step = Math.max(1, source.maxAckBatch ?? 1);
    for (let i = 0; i < sent.length; i += step) {
      const part = sent.slice(i, i + step);
      try {
        await source.ack(part.map((m) => m.ackId));
        result.moved += part.length;
      } catch (err) {
        // sent, not deleted: a later redrive sends them again (at least once)
        for (const m of part) fail(m, `re-sent but not deleted: ${describeError(err)}`);
      }
    }
  };

  // receives at once: as the source allows (a Service Bus receiver takes one at a time)
  const receives = new Semaphore(Math.max(1, source.parallelReceives ?? 1));
  const worker = async () => {
    while (!signal.aborted && reserved < max) {
      const want = Math.max(1, Math.min(source.maxReceive, max - reserved));
      reserved += want;
      let batch: readonly IncomingMessage[];
      await receives.acquire();
      try {
        batch = await source.receive(want, signal);
      } finally {
        receives.release();
        reserved -= want;
      }
      if (batch.length === 0) return;
      reserved += batch.length;
      const fresh: IncomingMessage[] = [];
      for (const m of batch) {
        if (failedIds.has(keyOf(m))) {
          reserved--;
          held.push(m.ackId); // failed earlier in this run (its lock ran out): hold it again
        } else fresh.push(m);
      }
      if (fresh.length === 0) return;
      if (options.dryRun) {
        for (const m of fresh) {
          result.wouldMove++;
          held.push(m.ackId);
          options.onMessage?.(m);
        }
      } else await sendAll(fresh);
      options.onProgress?.(result);
    }
  };

  try {
    await Promise.all(Array.from({ length: options.workers ?? 4 }, worker));
  } finally {
    await Promise.allSettled(held.map((id) => source.nack(id, 0, false)));
  }
  return result;
}

/** `cloudmom dlq <action> <url>`. */
export async function dlq(ctx: Context): Promise<number> {
  const { args } = ctx.parsed;
  const action = args.action!;
  if (action !== 'list' && action !== 'show' && action !== 'redrive')
    throw new UsageError(`dlq takes list, show or redrive, got "${action}"`);
  if (action === 'show' && args.messageId === undefined)
    throw new UsageError('dlq show needs <url> <messageId> (the ids dlq list prints)');
  if (action !== 'show' && args.messageId !== undefined)
    throw new UsageError(`dlq ${action} takes no message id`);
  const url = parseBrokerUrl(args.url!);
  const broker = await brokerFor(ctx);
  return withBroker(broker, async () => {
    const dl = await openDeadLetters(broker, url.display, url.platform);
    try {
      if (action === 'list') return await list(ctx, dl);
      if (action === 'show') return await show(ctx, dl, args.messageId!);
      return await redriveCommand(ctx, broker, dl);
    } finally {
      await dl.close().catch(() => undefined);
    }
  });
}

/** The broker's dead letters, or a usage error saying the platform has no `dlq` support. */
async function openDeadLetters(
  broker: Broker,
  display: string,
  platform: string,
): Promise<DeadLetters> {
  const transport = broker[INTERNALS].transport;
  if (!transport.openDeadLetters)
    throw new UsageError(
      `dlq is not supported on ${platform}:// yet (memory, sqs, sns and servicebus are): ` +
        `read its dead-letter destination with the platform's own tools`,
    );
  try {
    return await transport.openDeadLetters();
  } catch (err) {
    if (err instanceof Error) err.message = `${display}: ${err.message}`;
    throw err;
  }
}

function describeDeadLetter(m: IncomingMessage, dl: DeadLetters, bodies: boolean) {
  const r = dl.reason(m);
  const markers = dl.markers ?? [];
  if (markers.some((k) => Object.hasOwn(m.headers, k))) {
    const headers: Record<string, string> = {};
    for (const k of Object.keys(m.headers))
      if (!markers.includes(k)) setOwn(headers, k, m.headers[k]!);
    m = { ...m, headers, body: m.body };
  }
  return describeMessage(m, bodies, {
    reason: r?.code ?? 'moved by the platform',
    ...(r?.description ? { description: r.description } : {}),
    origin: dl.origin,
  });
}

/** Reads up to `max` dead letters (holding them), calls `each`, gives them all back. */
async function browse(
  ctx: Context,
  dl: DeadLetters,
  max: number,
  each: (m: IncomingMessage) => boolean | undefined,
): Promise<void> {
  const held: unknown[] = [];
  const seen = new Set<string>();
  try {
    while (held.length < max && !ctx.signal.aborted) {
      const batch = await dl.source.receive(
        Math.min(dl.source.maxReceive, max - held.length),
        ctx.signal,
      );
      if (batch.length === 0) return;
      let fresh = 0;
      for (const m of batch) held.push(m.ackId);
      for (const m of batch) {
        const key = dl.copyId?.(m) ?? `${m.messageId}/${String(m.ackId)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        fresh++;
        if (each(m) === false) return;
      }
      if (fresh === 0) return;
    }
  } finally {
    await Promise.allSettled(held.map((id) => dl.source.nack(id, 0, false)));
  }
}

async function list(ctx: Context, dl: DeadLetters): Promise<number> {
  const max = intFlag(ctx.parsed.flags.max, 'max') ?? 100;
  const bodies = ctx.parsed.flags.bodies === true;
  let n = 0;
  await browse(ctx, dl, max, (m) => {
    n++;
    const d = describeDeadLetter(m, dl, bodies);
    println(ctx.io.stdout, ctx.json ? JSON.stringify(d) : messageLine(d));
    return undefined;
  });
  if (!ctx.json) {
    const total = await dl.count?.().catch(() => undefined);
    println(
      ctx.io.stderr,
      `${n} dead letter${n === 1 ? '' : 's'} listed${total !== undefined ? ` (about ${total} waiting)` : ''}`,
    );
  }
  return EXIT.ok;
}

async function show(ctx: Context, dl: DeadLetters, id: string): Promise<number> {
  const max = intFlag(ctx.parsed.flags.max, 'max') ?? 10_000;
  let found: Record<string, unknown> | undefined;
  await browse(ctx, dl, max, (m) => {
    if (m.messageId !== id && dl.copyId?.(m) !== id) return undefined;
    found = describeDeadLetter(m, dl, true);
    return false;
  });
  if (!found) {
    println(ctx.io.stderr, `cloudmom: no dead letter with id ${id} among the first ${max}`);
    return EXIT.failed;
  }
  if (ctx.json) println(ctx.io.stdout, JSON.stringify(found));
  else
    for (const [k, v] of Object.entries(found))
      println(
        ctx.io.stdout,
        `${`${k}:`.padEnd(15)}${typeof v === 'string' ? v : JSON.stringify(v)}`,
      );
  return EXIT.ok;
}

async function redriveCommand(ctx: Context, broker: Broker, dl: DeadLetters): Promise<number> {
  const { flags } = ctx.parsed;
  const max = intFlag(flags.max, 'max');
  const dryRun = flags['dry-run'] === true;
  const to = typeof flags.to === 'string' ? flags.to : undefined;
  const transport = broker[INTERNALS].transport;
  const waiting = await dl.count?.().catch(() => undefined);
  const total = Math.min(max ?? Number.POSITIVE_INFINITY, waiting ?? 0);
  const destination = to ?? dl.origin;
  if (!ctx.json)
    println(
      ctx.io.stderr,
      `${dryRun ? 'dry run: ' : ''}redriving ${dl.source.name} → ${destination}` +
        (waiting !== undefined ? ` (about ${waiting} waiting)` : ''),
    );
  const bar = await progressBar(
    ctx.io,
    dryRun ? 'dry run' : 'redrive',
    total,
    !flags['no-progress'],
  );
  const started = Date.now();
  const done = (r: RedriveResult) => (dryRun ? r.wouldMove : r.moved + r.failed);
  const result = await redrive(transport, dl, {
    max,
    workers: intFlag(flags.parallel, 'parallel') ?? 4,
    dryRun,
    to,
    signal: ctx.signal,
    onProgress: (r) =>
      bar.update(done(r), { moved: dryRun ? r.wouldMove : r.moved, failed: r.failed }),
    onMessage: ctx.json
      ? undefined
      : (m) => println(ctx.io.stdout, messageLine(describeDeadLetter(m, dl, false))),
  });
  bar.update(done(result), {
    moved: dryRun ? result.wouldMove : result.moved,
    failed: result.failed,
  });
  bar.stop();
  const seconds = Number(((Date.now() - started) / 1000).toFixed(1));
  if (ctx.json) println(ctx.io.stdout, JSON.stringify({ ...result, destination, dryRun, seconds }));
  else {
    for (const f of result.failures.slice(0, 20))
      println(ctx.io.stderr, `failed ${f.messageId}: ${f.error}`);
    println(
      ctx.io.stdout,
      dryRun
        ? `would move ${result.wouldMove} to ${destination} (nothing moved)`
        : `moved ${result.moved}, failed ${result.failed} → ${destination} (${seconds} s)`,
    );
  }
  if (ctx.signal.aborted) return EXIT.interrupted;
  return result.failed > 0 ? EXIT.failed : EXIT.ok;
}
