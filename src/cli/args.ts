/**
 * The CLI's arguments: one `node:util` `parseArgs` spec per command (strict: unknown flags
 * are usage errors), the help text with an example per command, and the exit codes.
 * `parseArgs` is Node's own parser: no dependency, and enough for flat commands with flags.
 */
import { parseArgs } from 'node:util';

/**
 * Exit codes of the `cloudmom` CLI (docs/cli.md):
 * 0 done; 1 the operation ran and failed (a send refused, dead letters not moved);
 * 2 usage or setup (bad arguments or URL, missing SDK or connection string, not supported
 * on the platform); 3 `request` got no reply in time; 130 interrupted (Ctrl-C) before done.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 3, interrupted: 130 } as const;

/** A command line the CLI cannot run as given; exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Flag = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

const COMMON: Record<string, Flag> = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
};
const PROGRESS: Record<string, Flag> = { 'no-progress': { type: 'boolean' } };
const MESSAGE: Record<string, Flag> = {
  'content-type': { type: 'string' },
  header: { type: 'string', short: 'H', multiple: true },
  'group-key': { type: 'string' },
  text: { type: 'boolean' },
  bytes: { type: 'boolean' },
};

/** Flags and positionals of each command. */
export const COMMANDS = {
  publish: {
    positionals: ['url', 'target', 'body'],
    required: 2,
    flags: {
      ...COMMON,
      ...PROGRESS,
      ...MESSAGE,
      'correlation-id': { type: 'string' },
      'reply-to': { type: 'string' },
      delay: { type: 'string' },
      lines: { type: 'boolean' },
      inflight: { type: 'string' },
    },
  },
  request: {
    positionals: ['url', 'target', 'body'],
    required: 2,
    flags: { ...COMMON, ...MESSAGE, timeout: { type: 'string', short: 't' } },
  },
  tail: {
    positionals: ['url'],
    required: 1,
    flags: {
      ...COMMON,
      target: { type: 'string', multiple: true },
      bodies: { type: 'boolean' },
      max: { type: 'string' },
      idle: { type: 'string' },
    },
  },
  dlq: {
    positionals: ['action', 'url', 'messageId'],
    required: 2,
    flags: {
      ...COMMON,
      ...PROGRESS,
      max: { type: 'string' },
      bodies: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      to: { type: 'string' },
      parallel: { type: 'string' },
    },
  },
  infra: {
    positionals: ['platform'],
    required: 1,
    flags: {
      ...COMMON,
      topology: { type: 'string' },
      out: { type: 'string', short: 'o' },
      options: { type: 'string' },
    },
  },
  asyncapi: {
    positionals: [],
    required: 0,
    flags: { ...COMMON, topology: { type: 'string' }, out: { type: 'string', short: 'o' } },
  },
  dev: {
    positionals: [],
    required: 0,
    flags: { ...COMMON, topology: { type: 'string' }, handlers: { type: 'string' } },
  },
} as const satisfies Record<
  string,
  { positionals: readonly string[]; required: number; flags: Record<string, Flag> }
>;

export type Command = keyof typeof COMMANDS;

/** A parsed command line. */
export interface Parsed {
  readonly command: Command | 'help' | 'version';
  /** For `help <command>`. */
  readonly topic?: string;
  readonly args: Readonly<Record<string, string | undefined>>;
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>;
}

/** Reads argv (without `node` and the script); throws {@link UsageError}. */
export function parseCommandLine(argv: readonly string[]): Parsed {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help')
    return { command: 'help', topic: first === 'help' ? rest[0] : undefined, args: {}, flags: {} };
  if (first === '--version' || first === 'version')
    return { command: 'version', args: {}, flags: {} };
  if (!Object.hasOwn(COMMANDS, first))
    throw new UsageError(
      `unknown command "${first}" (commands: ${Object.keys(COMMANDS).join(', ')}; cloudmom --help)`,
    );
  const command = first as Command;
  const spec = COMMANDS[command];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: spec.flags as Record<string, Flag>,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (cloudmom ${command} --help)`);
  }
  const flags = parsed.values as Parsed['flags'];
  if (flags.help) return { command: 'help', topic: command, args: {}, flags: {} };
  const positionals = parsed.positionals;
  if (positionals.length > spec.positionals.length)
    throw new UsageError(
      `too many arguments for ${command}: ${spec.positionals.length} at most (${usageLine(command)})`,
    );
  if (positionals.length < spec.required)
    throw new UsageError(`${command} needs ${describeMissing(command, positionals.length)}`);
  const args: Record<string, string | undefined> = {};
  spec.positionals.forEach((name, i) => {
    args[name] = positionals[i];
  });
  return { command, args, flags };
}

function describeMissing(command: Command, given: number): string {
  const spec = COMMANDS[command];
  const missing = spec.positionals.slice(given, spec.required).map((p) => `<${p}>`);
  return `${missing.join(' ')} (${usageLine(command)})`;
}

function usageLine(command: Command): string {
  return HELP[command].split('\n')[0]!.trim();
}

/** A whole number ≥ `min` from a flag, or undefined when the flag is absent. */
export function intFlag(v: unknown, name: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < min)
    throw new UsageError(`--${name} must be a whole number ≥ ${min}, got "${String(v)}"`);
  return Number(v);
}

/** `--header k=v` flags → headers. */
export function headerFlags(v: unknown): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const h of v as string[]) {
    const eq = h.indexOf('=');
    if (eq <= 0) throw new UsageError(`--header takes name=value, got "${h}"`);
    Object.defineProperty(out, h.slice(0, eq), {
      value: h.slice(eq + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Help texts: the first line is the usage, then the flags, then an example. */
export const HELP: Readonly<Record<Command, string>> = {
  publish: `cloudmom publish <url> <target> [body|@file|-]
  Publishes one message (the body: JSON when it parses, else text), or with --lines one per
  line of the file or stdin (JSON lines), with a progress bar.
    --lines               each non-empty line is a message body
    --text | --bytes      the body is text / raw bytes, whatever it looks like
    --content-type <t>    content type (default: by body kind)
    -H, --header k=v      a header (repeatable)
    --correlation-id <id> --reply-to <address> --group-key <key> --delay <seconds>
    --inflight <n>        publishes in flight with --lines (default 500)
    --json                print {"messageId"} (or {"published","failed"}) as JSON
  Example:
    cloudmom publish sqs://orders order.created '{"id":7}' -H tenant=acme
    cloudmom publish sqs://orders order.created @orders.jsonl --lines`,
  request: `cloudmom request <url> <target> [body|@file|-] [--timeout ms]
  Sends a request and prints the reply body (exit 3 when none comes in time).
    -t, --timeout <ms>    how long to wait (default 30000)
    -H, --header k=v  --content-type <t>  --group-key <key>  --text | --bytes
    --json                print {"correlationId","properties","body"}
  Example:
    cloudmom request servicebus://my-ns/geocode geocode '{"city":"Prague"}' --timeout 5000`,
  tail: `cloudmom tail <url> [--target t] [--bodies]
  Consumes the queue or subscription live and prints one line per message (it acknowledges
  what it shows: point it at a subscription of its own, or a queue you mean to drain; Kafka
  reads in a consumer group of its own and takes nothing from others). Bodies and header
  values are shown only with --bodies. Ends on Ctrl-C, --max or --idle.
    --target <t>          only this target (repeatable); others are given back at once
    --bodies              show bodies and header values
    --max <n>             stop after n messages
    --idle <seconds>      stop after this long without a message
    --json                one JSON object per line
  Example:
    cloudmom tail sqs://orders-debug --target order.created --bodies`,
  dlq: `cloudmom dlq list|show|redrive <url> [messageId]
  The dead letters of the URL's queue or subscription (SQS: its RedrivePolicy target or
  ?dlq=; Service Bus: its $deadletterqueue; memory: <queue>.dlq).
    list                  one line per dead letter: id, target, reason (--max, default 100)
    show <messageId>      one dead letter whole: properties, headers and body
    redrive               moves dead letters back where they came from, with their target,
                          headers, correlation id, reply address and group key (not their
                          dead_letter_* attributes); each is re-sent, then deleted, so a
                          killed redrive resumes with what is left
    --max <n>             at most n dead letters
    --dry-run             redrive: count and list what would move, move nothing
    --to <destination>    redrive: send there instead of the origin
    --parallel <n>        redrive: receive/send loops at once (default 4)
    --bodies              list: show bodies and header values
    --json                JSON output
  Example:
    cloudmom dlq list sqs://orders
    cloudmom dlq redrive sqs://orders --max 1000`,
  infra: `cloudmom infra <platform> [--topology file] [--out dir]
  Writes the IaC of the topology for a platform (aws, azure, gcp, cloudflare, amqp, kafka):
  the generators of cloudmom/infra.
    --topology <file>     a module exporting \`topology\` (default ./topology.ts, .js, .mjs)
    -o, --out <dir>       where to write (default .)
    --options <file.json> the generator's options (see docs/topology.md)
    --json                print {"files":[{"path","bytes"}]}
  Example:
    cloudmom infra aws --topology examples/topology.ts --out build`,
  asyncapi: `cloudmom asyncapi [--topology file] [--out dir]
  Writes the topology's AsyncAPI 3 document (asyncapi.json).
    --topology <file>  -o, --out <dir>  --json
  Example:
    cloudmom asyncapi --topology examples/topology.ts --out docs`,
  dev: `cloudmom dev --handlers <module> [--topology file]
  Runs the topology's services on the embedded broker (no cloud): one MemoryBroker per
  service with its settings, the handlers added by the module's register(broker, { service }).
  Each stdin line "<target> [body]" is published to its service (a request when the target
  replies: the reply is printed); dead letters are reported. Ends with stdin or Ctrl-C.
    --handlers <module>   exports register(broker, { service }) (or a default function)
    --topology <file>     --json (one JSON event per line)
  Example:
    echo 'sum {"numbers":[1,2]}' | cloudmom dev --topology topology.ts --handlers handlers.ts`,
};

/** The overview `cloudmom --help` prints. */
export function overview(): string {
  return `cloudmom — message-oriented middleware for serverless and edge code

Usage: cloudmom <command> <url> ... [flags]    (cloudmom <command> --help for details)

Commands:
${(Object.keys(HELP) as Command[]).map((c) => `  ${usageLine(c).replace(/^cloudmom /, '')}`).join('\n')}

Broker URLs: memory://[queue]  sqs://<queue>[?region=&endpoint=&dlq=]  sns://<topic>?queue=<q>
  servicebus://<namespace>/<queue or topic/subscription>   (SERVICEBUS_CONNECTION_STRING)
  pubsub://<project>/<topic>?subscription=<s>  amqp[s]://[user:pass@]host[:port][/vhost]?queue=<q>
  kafka://host:port[,host:port]/<topic>

Flags everywhere: --json (output for scripts), -v/--verbose (cloudmom's log lines on stderr),
  -h/--help.
Exit codes: 0 done, 1 failed, 2 usage or setup, 3 no reply in time, 130 interrupted.

Example:
  cloudmom publish sqs://orders order.created '{"id":7}'
  cloudmom dlq redrive sqs://orders`;
}
