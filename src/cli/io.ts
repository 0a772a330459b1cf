/**
 * What the CLI reads and writes: bodies from arguments, files or stdin; one line per message
 * (or a JSON object with `--json`) on stdout; messages on stderr; and the progress bar
 * (cli-progress, on stderr, drawn only when stderr is a terminal).
 */
import { readFile } from 'node:fs/promises';
import type { Body } from '../codec.ts';
import type { IncomingMessage } from '../transport.ts';
import { UsageError } from './args.ts';

/** Where the CLI writes; tests pass their own. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stdin: NodeJS.ReadableStream;
}

/** The text of `[body|@file|-]`: the argument itself, a file's content, or stdin. */
export async function readSource(arg: string, io: Io): Promise<Uint8Array> {
  if (arg === '-') {
    const chunks: Buffer[] = [];
    for await (const c of io.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
    return new Uint8Array(Buffer.concat(chunks));
  }
  if (arg.startsWith('@')) {
    try {
      return new Uint8Array(await readFile(arg.slice(1)));
    } catch (err) {
      throw new UsageError(`cannot read ${arg.slice(1)}: ${(err as Error).message}`);
    }
  }
  return new TextEncoder().encode(arg);
}

const strict = new TextDecoder('utf-8', { fatal: true });

/** A body as given: bytes with --bytes, text with --text, else JSON when it parses, else text. */
export function toBody(bytes: Uint8Array, mode: { text?: boolean; bytes?: boolean }): Body {
  if (mode.bytes) return bytes;
  let text: string;
  try {
    text = strict.decode(bytes);
  } catch {
    if (mode.text) throw new UsageError('--text: the body is not UTF-8 (use --bytes)');
    return bytes;
  }
  if (mode.text) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A body for display: its text when it is UTF-8, else `<n bytes, base64 …>`. */
export function showBody(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    return `<${bytes.byteLength} bytes, base64 ${Buffer.from(bytes).toString('base64')}>`;
  }
}

/** A body for JSON output: the JSON value under a JSON content type, else its text (or base64). */
export function bodyValue(m: { body: Uint8Array; contentType?: string }): unknown {
  const text = showBody(m.body);
  if (/^application\/(?:[\w.+-]+\+)?json\b/i.test(m.contentType ?? '')) {
    try {
      return JSON.parse(text);
    } catch {}
  }
  return text;
}

/** What is printed about a message: never body or header values unless `bodies`. */
export function describeMessage(
  m: IncomingMessage,
  bodies: boolean,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const names = Object.keys(m.headers);
  const out: Record<string, unknown> = {
    target: m.target,
    messageId: m.messageId,
    ...(m.correlationId !== undefined ? { correlationId: m.correlationId } : {}),
    ...(m.replyTo !== undefined ? { replyTo: m.replyTo } : {}),
    ...(m.groupKey !== undefined ? { groupKey: m.groupKey } : {}),
    contentType: m.contentType,
    size: m.body.byteLength,
    deliveryCount: m.deliveryCount,
    ...(m.publishedAt ? { publishedAt: m.publishedAt.toISOString() } : {}),
    ...extra,
    headers: bodies ? { ...m.headers } : names,
  };
  if (bodies) out.body = bodyValue(m);
  return out;
}

/** One readable line for a described message. */
export function messageLine(d: Record<string, unknown>): string {
  const parts = [
    d.publishedAt ?? '-',
    d.target ?? '(no target)',
    `id=${d.messageId}`,
    d.correlationId !== undefined ? `corr=${d.correlationId}` : '',
    d.replyTo !== undefined ? `reply=${d.replyTo}` : '',
    d.groupKey !== undefined ? `group=${d.groupKey}` : '',
    d.reason !== undefined ? `reason=${d.reason}` : '',
    `${d.size}B`,
    d.contentType ?? '',
    `delivery=${d.deliveryCount}`,
  ];
  const headers = d.headers;
  if (Array.isArray(headers) && headers.length > 0) parts.push(`headers=${headers.join(',')}`);
  else if (headers && !Array.isArray(headers) && Object.keys(headers).length > 0)
    parts.push(`headers=${JSON.stringify(headers)}`);
  if ('body' in d)
    parts.push(`body=${typeof d.body === 'string' ? d.body : JSON.stringify(d.body)}`);
  return parts.filter((p) => p !== '').join('  ');
}

/** Writes a line to a stream. */
export function println(stream: NodeJS.WritableStream, line: string): void {
  stream.write(`${line}\n`);
}

/** A progress bar on stderr when it is a terminal (and not turned off); else nothing. */
export interface Progress {
  update(value: number, counts: { moved?: number; failed?: number; total?: number }): void;
  stop(): void;
}

/**
 * A cli-progress bar (loaded here only: the library never loads it). Drawn when stderr is a
 * terminal; `total` 0 means not known yet.
 */
export async function progressBar(
  io: Io,
  label: string,
  total: number,
  enabled: boolean,
  done = 'moved',
): Promise<Progress> {
  if (!enabled || !io.stderr.isTTY) return { update() {}, stop() {} };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} | ${done} {moved} failed {failed} | {duration_formatted}`,
      stream: io.stderr,
      hideCursor: true,
      barsize: 30,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let t = total;
  bar.start(t, 0, { moved: 0, failed: 0 });
  return {
    update(value, counts) {
      if (counts.total !== undefined && counts.total !== t) {
        t = counts.total;
        bar.setTotal(t);
      } else if (value > t) {
        t = value;
        bar.setTotal(t);
      }
      bar.update(value, { moved: counts.moved ?? value, failed: counts.failed ?? 0 });
    },
    stop() {
      bar.stop();
    },
  };
}
