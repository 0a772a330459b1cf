/**
 * Where cloudmom writes its log lines. Fields never contain message bodies or secrets.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker({ logger: { debug() {}, info: console.info, warn: console.warn, error: console.error } });
 * ```
 */
export interface Logger {
  /** Details for troubleshooting (each received message's fate). */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Lifecycle and retries. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something went to the dead-letter destination or was dropped. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** A failure cloudmom could not handle by itself (receiving, dead-lettering). */
  error(message: string, fields?: Record<string, unknown>): void;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
/** Log levels, lowest first; `silent` logs nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/**
 * One JSON line per entry on stderr (what CloudWatch, Azure Monitor and Cloud Logging parse),
 * at `level` and above. The default level comes from `CLOUDMOM_LOG_LEVEL`, else `warn`.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker({ logger: jsonLogger('debug') });
 * ```
 */
export function jsonLogger(level: LogLevel = envLevel()): Logger {
  const min = LEVELS.indexOf(level);
  const at =
    (lvl: LogLevel) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (LEVELS.indexOf(lvl) < min) return;
      const line = JSON.stringify({ level: lvl, logger: 'cloudmom', message, ...fields });
      // Node, Bun, Deno: stderr; edge runtimes (workerd) have only the console.
      const stderr = globalThis.process?.stderr;
      if (stderr && typeof stderr.write === 'function') stderr.write(`${line}\n`);
      else console.error(line);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function envLevel(): LogLevel {
  const v = globalThis.process?.env?.CLOUDMOM_LOG_LEVEL as LogLevel | undefined;
  return v && LEVELS.includes(v) ? v : 'warn';
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** `s` cut at `max` characters, "…" marking the cut (log lines and reasons stay bounded). */
export function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Describes an error for a log line or a dead-letter reason, without payloads, bounded. */
export function describeError(err: unknown): string {
  return cut(err instanceof Error ? `${err.name}: ${err.message}` : String(err), 1000);
}

/**
 * What a log line may say about an error that came from user code or a message (a handler's
 * throw, a decode or schema failure): its class and code, never its text, which may quote the
 * body. The full description travels only in the dead-letter reason, on the message itself.
 */
export function errorKind(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.name} (${code.slice(0, 50)})` : err.name;
  }
  return typeof err;
}
