/**
 * The `cloudmom` CLI: parses the command line, builds the broker from its URL
 * (`createBroker`), runs the command and answers an exit code ({@link EXIT}). `publish`,
 * `request` and `tail` live here; the `dlq` commands in dlq.ts.
 */
import { type Broker, INTERNALS } from '../broker.ts';
import { CloudmomError, RequestTimeoutError } from '../errors.ts';
import { describeError } from '../log.ts';
import type { PublishOptions } from '../options.ts';
import type { Source } from '../transport.ts';
import { parseBrokerUrl } from '../url.ts';
import { sleep } from '../util.ts';
import {
  type Command,
  EXIT,
  HELP,
  headerFlags,
  intFlag,
  overview,
  type Parsed,
  parseCommandLine,
  UsageError,
} from './args.ts';
import { brokerFor, type Context, withBroker } from './context.ts';
import { dlq } from './dlq.ts';
import {
  describeMessage,
  type Io,
  messageLine,
  println,
  progressBar,
  readSource,
  showBody,
  toBody,
} from './io.ts';
import { asyncapiCommand, dev, infra } from './topology.ts';

/**
 * Runs one command line; resolves to its exit code. Never throws: errors are printed on
 * stderr (as JSON with `--json`) and mapped to an exit code.
 */
export async function run(
  argv: readonly string[],
  io: Io,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (err) {
    return fail(io, err, argv.includes('--json'));
  }
  if (parsed.command === 'help') {
    const topic = parsed.topic;
    if (topic !== undefined && !Object.hasOwn(HELP, topic))
      return fail(io, new UsageError(`no help for "${topic}"`), false);
    println(io.stdout, topic ? HELP[topic as Command] : overview());
    return EXIT.ok;
  }
  if (parsed.command === 'version') {
    println(io.stdout, await version());
    return EXIT.ok;
  }
  const json = parsed.flags.json === true;
  const ctx: Context = { parsed, io, signal, json };
  try {
    switch (parsed.command) {
      case 'publish':
        return await publish(ctx);
      case 'request':
        return await request(ctx);
      case 'tail':
        return await tail(ctx);
      case 'dlq':
        return await dlq(ctx);
      case 'infra':
        return await infra(ctx);
      case 'asyncapi':
        return await asyncapiCommand(ctx);
      case 'dev':
        return await dev(ctx);
    }
  } catch (err) {
    return fail(io, err, json);
  }
}

/** Prints an error and answers its exit code (usage/setup 2, timeout 3, else 1). */
export function fail(io: Io, err: unknown, json: boolean): number {
  const code =
    err instanceof UsageError
      ? EXIT.usage
      : err instanceof RequestTimeoutError
        ? EXIT.timeout
        : err instanceof CloudmomError && err.code === 'invalid-argument'
          ? EXIT.usage
          : EXIT.failed;
  const message = err instanceof Error ? err.message : String(err);
  if (json) {
    const kind =
      err instanceof CloudmomError ? err.code : err instanceof UsageError ? 'usage' : 'failed';
    println(io.stderr, JSON.stringify({ error: message, code: kind, exitCode: code }));
  } else {
    println(
      io.stderr,
      `cloudmom: ${err instanceof CloudmomError || err instanceof UsageError ? message : describeError(err)}`,
    );
    const cause = err instanceof Error ? err.cause : undefined;
    if (cause !== undefined && code !== EXIT.usage)
      println(io.stderr, `  cause: ${describeError(cause)}`);
  }
  return code;
}

/** The version in the package's package.json (found up from this file: src/ or dist/src/). */
async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(up, import.meta.url), 'utf8'));
      if (pkg.name === 'cloudmom') return `cloudmom ${pkg.version}`;
    } catch {}
  }
  return 'cloudmom (version unknown)';
}

/** The options of a message from the flags (headers, content type, group key...). */
function messageOptions(flags: Parsed['flags']): PublishOptions {
  const o: PublishOptions = {};
  const headers = headerFlags(flags.header);
  if (headers) o.headers = headers;
  if (typeof flags['content-type'] === 'string') o.contentType = flags['content-type'];
  if (typeof flags['group-key'] === 'string') o.groupKey = flags['group-key'];
  if (typeof flags['correlation-id'] === 'string') o.correlationId = flags['correlation-id'];
  if (typeof flags['reply-to'] === 'string') o.replyTo = flags['reply-to'];
  const delay = intFlag(flags.delay, 'delay', 0);
  if (delay !== undefined) o.delaySeconds = delay;
  if (flags.text && flags.bytes) throw new UsageError('--text and --bytes exclude each other');
  return o;
}

// ------------------------------------------------------------------ publish

async function publish(ctx: Context): Promise<number> {
  const { args, flags } = ctx.parsed;
  const options = messageOptions(flags);
  if (args.body === undefined)
    throw new UsageError('publish needs a body: text or JSON, @file, or - for stdin');
  const source = await readSource(args.body, ctx.io);
  const mode = { text: flags.text === true, bytes: flags.bytes === true };
  const broker = await brokerFor(ctx);
  return withBroker(broker, async () => {
    if (!flags.lines) {
      const id = await broker.publish(toBody(source, mode), args.target!, options);
      println(ctx.io.stdout, ctx.json ? JSON.stringify({ messageId: id }) : id);
      return EXIT.ok;
    }
    if (mode.bytes) throw new UsageError('--lines and --bytes exclude each other');
    return publishLines(ctx, broker, source, mode, options);
  });
}

async function publishLines(
  ctx: Context,
  broker: Broker,
  source: Uint8Array,
  mode: { text: boolean },
  options: PublishOptions,
): Promise<number> {
  const lines = new TextDecoder().decode(source).split('\n');
  const work: { line: number; text: string }[] = [];
  lines.forEach((text, i) => {
    if (text.trim() !== '') work.push({ line: i + 1, text });
  });
  const inflight = intFlag(ctx.parsed.flags.inflight, 'inflight') ?? 500;
  const bar = await progressBar(
    ctx.io,
    'publish',
    work.length,
    !ctx.parsed.flags['no-progress'],
    'published',
  );
  const started = Date.now();
  let published = 0;
  const failures: { line: number; error: string }[] = [];
  const running = new Set<Promise<void>>();
  for (const { line, text } of work) {
    if (ctx.signal.aborted) break;
    let body: unknown;
    if (mode.text) body = text;
    else {
      try {
        body = JSON.parse(text);
      } catch {
        failures.push({ line, error: 'not JSON (use --text for lines of text)' });
        continue;
      }
    }
    const p = broker.publish(body, ctx.parsed.args.target!, options).then(
      () => {
        published++;
      },
      (err: unknown) => {
        failures.push({ line, error: describeError(err) });
      },
    );
    const tracked = p.finally(() => {
      running.delete(tracked);
      bar.update(published + failures.length, { moved: published, failed: failures.length });
    });
    running.add(tracked);
    if (running.size >= inflight) await Promise.race(running);
  }
  await Promise.all(running);
  bar.update(published + failures.length, { moved: published, failed: failures.length });
  bar.stop();
  const seconds = (Date.now() - started) / 1000;
  failures.sort((a, b) => a.line - b.line);
  if (ctx.json)
    println(
      ctx.io.stdout,
      JSON.stringify({
        published,
        failed: failures.length,
        seconds,
        failures: failures.slice(0, 100),
      }),
    );
  else {
    for (const f of failures.slice(0, 20)) println(ctx.io.stderr, `line ${f.line}: ${f.error}`);
    println(
      ctx.io.stdout,
      `published ${published}, failed ${failures.length} (${seconds.toFixed(1)} s)`,
    );
  }
  if (ctx.signal.aborted) return EXIT.interrupted;
  return failures.length > 0 ? EXIT.failed : EXIT.ok;
}

// ------------------------------------------------------------------ request

async function request(ctx: Context): Promise<number> {
  const { args, flags } = ctx.parsed;
  const options = messageOptions(flags);
  if (options.correlationId !== undefined || options.replyTo !== undefined)
    throw new UsageError('request sets the correlation id and reply address itself');
  const timeoutMs = intFlag(flags.timeout, 'timeout') ?? 30_000;
  const body =
    args.body === undefined
      ? null
      : toBody(await readSource(args.body, ctx.io), {
          text: flags.text === true,
          bytes: flags.bytes === true,
        });
  const broker = await brokerFor(ctx);
  return withBroker(broker, async () => {
    const reply = await broker.request(body, args.target!, {
      ...options,
      timeoutMs,
      signal: ctx.signal,
    });
    const p = reply.properties;
    if (ctx.json) {
      println(
        ctx.io.stdout,
        JSON.stringify({
          correlationId: p.correlationId,
          properties: {
            target: p.target,
            messageId: p.messageId,
            contentType: p.contentType,
            headers: p.headers,
          },
          body: reply.body instanceof Uint8Array ? showBody(reply.body) : reply.body,
        }),
      );
    } else {
      const b = reply.body;
      println(
        ctx.io.stdout,
        typeof b === 'string'
          ? b
          : b instanceof Uint8Array
            ? showBody(b)
            : JSON.stringify(b, null, 2),
      );
    }
    return EXIT.ok;
  });
}

// ------------------------------------------------------------------ tail

async function tail(ctx: Context): Promise<number> {
  const { flags } = ctx.parsed;
  const url = parseBrokerUrl(ctx.parsed.args.url!);
  const targets = new Set((flags.target as string[] | undefined) ?? []);
  const max = intFlag(flags.max, 'max');
  const idleMs = (intFlag(flags.idle, 'idle') ?? 0) * 1000;
  const bodies = flags.bodies === true;
  // Kafka: a consumer group of its own, from now on, takes nothing from anyone.
  const ownGroup = url.platform === 'kafka';
  const extra: Record<string, unknown> = {};
  if (ownGroup && url.options.groupId === undefined) {
    extra.groupId = `cloudmom-tail-${globalThis.crypto.randomUUID()}`;
    extra.startFrom = 'latest';
  }
  const broker = await brokerFor(ctx, extra);
  return withBroker(broker, async () => {
    const transport = broker[INTERNALS].transport;
    const sources = (await transport.open?.()) ?? [];
    if (sources.length === 0)
      throw new UsageError(
        `${url.display}: nothing to consume (name a queue or subscription in the URL)`,
      );
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let seen = 0;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      if (idleMs === 0) return;
      clearTimeout(idle);
      idle = setTimeout(() => stop.abort(), idleMs);
    };
    armIdle();
    if (!ctx.json)
      println(ctx.io.stderr, `tailing ${sources.map((s) => s.name).join(', ')} (Ctrl-C to stop)`);
    const loop = async (source: Source) => {
      const givenBack = new Set<string>();
      while (!stop.signal.aborted) {
        let batch: readonly import('../transport.ts').IncomingMessage[];
        try {
          batch = await source.receive(source.maxReceive, stop.signal);
        } catch (err) {
          if (stop.signal.aborted) break;
          throw err;
        }
        const acks: unknown[] = [];
        let shown = 0;
        for (const m of batch) {
          const wanted = targets.size === 0 || (m.target !== undefined && targets.has(m.target));
          if (!wanted && !ownGroup) {
            givenBack.add(m.messageId);
            await source.nack(m.ackId, 0, false);
            continue;
          }
          if (wanted && (max === undefined || seen < max)) {
            seen++;
            shown++;
            const d = describeMessage(m, bodies);
            println(ctx.io.stdout, ctx.json ? JSON.stringify(d) : messageLine(d));
            acks.push(m.ackId);
          } else if (ownGroup) acks.push(m.ackId);
          else await source.nack(m.ackId, 0, false);
        }
        const step = Math.max(1, source.maxAckBatch ?? 1);
        for (let i = 0; i < acks.length; i += step) await source.ack(acks.slice(i, i + step));
        if (shown > 0) armIdle();
        if (max !== undefined && seen >= max) stop.abort();
        // only messages of other targets came: do not spin on them
        else if (batch.length > 0 && shown === 0 && !ownGroup) await sleep(1000, stop.signal);
      }
    };
    try {
      await Promise.all(sources.map(loop));
    } finally {
      clearTimeout(idle);
      ctx.signal.removeEventListener('abort', onAbort);
      await Promise.allSettled(sources.map((s) => s.close()));
    }
    if (!ctx.json) println(ctx.io.stderr, `${seen} message${seen === 1 ? '' : 's'}`);
    return EXIT.ok;
  });
}
