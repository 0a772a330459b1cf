/**
 * The Cloudflare generator: a topology → `wrangler.toml` for Workers and Queues.
 *
 * Cloudflare Queues have no topic and no filter, and a `CloudflareQueueBroker` publishes to
 * one producer binding (`queue`). So each service gets its own queue, and a publish reaches
 * the right one by target: the Worker holds one broker per service (its `queue` = that
 * service's producer binding) and publishes through the broker of
 * `topology.serviceOf(target)` — see `examples/cloudflare/worker.ts`; the binding names come
 * from {@link cloudflareBindings}, the same function the generator uses.
 *
 * Shape (queue names from {@link Topology.names}, the same on every platform):
 *
 * - one Worker per service, a wrangler environment `[env.<service>]` (deployed with
 *   `--env <service>`, named `<worker>-<service>`): a consumer of its queue `<prefix>-<service>`
 *   (`max_batch_size` = `batchSize`, `max_retries` = `maxDeliveries` so cloudmom dead-letters
 *   first, with the reason; `dead_letter_queue`, `retry_delay` = the retry base delay,
 *   `max_concurrency`), and producer bindings for every service queue (publish to any target),
 *   its dead-letter queue `<prefix>-<service>-dead-letter` and, if it replies, the reply queue;
 *   a Worker's bindings are its rights, so each service can write only these queues;
 * - the front Worker (top level, no `--env`): producers for every service queue (the example's
 *   `POST /<target>`) and the consumer of the reply queue `<prefix>-replies` (target `reply`);
 * - the queue creation commands (retention from `retentionSeconds`,
 *   `deadLetterRetentionSeconds` and `replies.retentionSeconds`) in the header: queues are
 *   account resources that wrangler.toml only refers to.
 *
 * Cloudflare Queues do not order messages: an ordered service is refused. Queue names are at
 * most 63 characters: a longer one is refused (shorten the topology's or the service's name,
 * or the stage). Messages are encrypted at rest by the platform.
 *
 * @example
 * ```ts
 * import { generateCloudflare } from 'cloudmom/infra';
 * const [file] = generateCloudflare(topology, { main: 'src/worker.ts' });
 * file!.path; // "wrangler.toml"
 * ```
 * @module
 */
import { InvalidArgumentError } from '../errors.ts';
import type { Topology } from '../topology.ts';
import { checkOptionKeys } from '../util.ts';
import { integerOption } from './ranges.ts';
import type { GeneratedFile } from './types.ts';

/**
 * Options of {@link generateCloudflare}.
 *
 * @example
 * ```ts
 * const options: CloudflareInfraOptions = { main: '../../src/worker.ts', compatibilityFlags: ['nodejs_compat'] };
 * ```
 */
export interface CloudflareInfraOptions {
  /** Stage of the names (`<name>-<stage>-…`); the Workers get it as the var `CLOUDMOM_STAGE`. Default: none. */
  readonly stage?: string;
  /** The front Worker's name; service Workers are `<name>-<service>`. Default: the prefix (`<name>` or `<name>-<stage>`). */
  readonly name?: string;
  /** The Worker's entry module, relative to the wrangler.toml. Default `worker.ts`. */
  readonly main?: string;
  /** `compatibility_date`. Default `2026-04-01`. */
  readonly compatibilityDate?: string;
  /** `compatibility_flags`. Default none (cloudmom/cloudflare needs none; `nodejs_compat` enables publish batching). */
  readonly compatibilityFlags?: readonly string[];
  /** `max_batch_timeout` of the service consumers, in seconds (0–60). Default 5. */
  readonly maxBatchTimeoutSeconds?: number;
  /** `max_concurrency` of every service consumer (1–250). Default: the service's `concurrency`, at most 250. */
  readonly maxConcurrency?: number;
}

const OPTION_KEYS = [
  'stage',
  'name',
  'main',
  'compatibilityDate',
  'compatibilityFlags',
  'maxBatchTimeoutSeconds',
  'maxConcurrency',
] as const satisfies readonly (keyof CloudflareInfraOptions)[];

/** The queues of one service and the names of their bindings. */
export interface CloudflareServiceBindings {
  /** The service's queue. */
  readonly queue: string;
  /** Its producer binding (`GREETER_QUEUE` for service `greeter`). */
  readonly binding: string;
  /** The service's dead-letter queue. */
  readonly deadLetter: string;
  /** Its producer binding (`GREETER_DEAD_LETTERS`), in the service's own Worker only. */
  readonly deadLetterBinding: string;
}

/** The queues of a topology on Cloudflare and the env bindings the Workers get for them. */
export interface CloudflareBindings {
  /** By service name. */
  readonly services: Readonly<Record<string, CloudflareServiceBindings>>;
  /** The reply queue and its binding (`REPLIES`), when the topology has replies. */
  readonly replies?: { readonly queue: string; readonly binding: string };
}

/** Queue names: lowercase letters, digits and dashes, at most 63 (Cloudflare's rule). */
const QUEUE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Cloudflare Queues' own bound on `max_concurrency`. */
const MAX_CONCURRENCY = 250;

/**
 * The queue names of a topology on Cloudflare and the binding names the generated
 * wrangler.toml gives them: a Worker reads its bindings with these names. Service `a-b`
 * gets `A_B_QUEUE` and `A_B_DEAD_LETTERS`; the reply queue `REPLIES`.
 *
 * @example
 * ```ts
 * const b = cloudflareBindings(topology);
 * const queue = env[b.services.greeter!.binding]; // the producer binding of greeter's queue
 * ```
 */
export function cloudflareBindings(
  topology: Topology,
  options: { stage?: string } = {},
): CloudflareBindings {
  checkOptionKeys(options, ['stage'], 'cloudflareBindings');
  const n = topology.names(options.stage);
  const services: Record<string, CloudflareServiceBindings> = {};
  for (const s of topology.services) {
    const id = s.name.toUpperCase().replace(/-/g, '_');
    const own = n.services[s.name]!;
    services[s.name] = {
      queue: own.queue,
      binding: `${id}_QUEUE`,
      deadLetter: own.deadLetter,
      deadLetterBinding: `${id}_DEAD_LETTERS`,
    };
  }
  return {
    services,
    ...(n.replies && { replies: { queue: n.replies, binding: 'REPLIES' } }),
  };
}

/**
 * Generates `wrangler.toml` for a topology (see the module for the shape).
 *
 * @example
 * ```ts
 * const [file] = generateCloudflare(topology, { main: '../../examples/cloudflare/worker.ts' });
 * // npx wrangler deploy --config wrangler.toml --env greeter
 * ```
 */
export function generateCloudflare(
  topology: Topology,
  options: CloudflareInfraOptions = {},
): GeneratedFile[] {
  const where = 'generateCloudflare';
  checkOptionKeys(options, OPTION_KEYS, where);
  const text = (v: unknown, fallback: string, at: string): string => {
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || v === '' || /["\\\n]/.test(v))
      throw new InvalidArgumentError(
        `${where}: ${at} must be a non-empty string without quotes, backslashes or newlines`,
      );
    return v;
  };
  const n = topology.names(options.stage);
  const name = text(options.name, n.prefix, 'name');
  if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(name) || name.length > 63 - 25)
    throw new InvalidArgumentError(
      `${where}: name "${name}" must be lower-case letters, digits and hyphens, short enough for "<name>-<service>" (at most 38 characters)`,
    );
  const main = text(options.main, 'worker.ts', 'main');
  const date = text(options.compatibilityDate, '2026-04-01', 'compatibilityDate');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date))
    throw new InvalidArgumentError(`${where}: compatibilityDate must be YYYY-MM-DD`);
  const flags = options.compatibilityFlags ?? [];
  if (!Array.isArray(flags))
    throw new InvalidArgumentError(`${where}: compatibilityFlags must be an array of strings`);
  for (const [i, f] of flags.entries()) text(f, '', `compatibilityFlags[${i}]`);
  const batchTimeout = integerOption(
    options.maxBatchTimeoutSeconds,
    5,
    0,
    60,
    `${where}: maxBatchTimeoutSeconds`,
  );
  const maxConcurrency =
    options.maxConcurrency === undefined
      ? undefined
      : integerOption(options.maxConcurrency, 0, 1, MAX_CONCURRENCY, `${where}: maxConcurrency`);

  for (const s of topology.services)
    if (s.ordered)
      throw new InvalidArgumentError(
        `${where}: service "${s.name}" is ordered, and Cloudflare Queues do not order messages; set ordered: false or deploy this service on a platform that orders (SQS FIFO, Service Bus sessions, Pub/Sub ordering keys, Kafka)`,
      );
  const b = cloudflareBindings(topology, { stage: options.stage });
  const queues = [
    ...Object.values(b.services).flatMap((s) => [s.queue, s.deadLetter]),
    ...(b.replies ? [b.replies.queue] : []),
  ];
  for (const q of queues)
    if (!QUEUE_NAME.test(q))
      throw new InvalidArgumentError(
        `${where}: queue name "${q}" is longer than Cloudflare's 63 characters; shorten the topology's name, the service's name or the stage`,
      );

  const lines: string[] = [];
  const put = (...l: string[]) => lines.push(...l);
  const str = (v: string) => JSON.stringify(v);
  const producer = (table: string, binding: string, queue: string) =>
    put(`[[${table}queues.producers]]`, `binding = ${str(binding)}`, `queue = ${str(queue)}`, '');
  const vars = (table: string) => {
    if (options.stage !== undefined)
      put(`[${table}vars]`, `CLOUDMOM_STAGE = ${str(options.stage)}`, '');
  };
  const maxDeliveries = Math.max(...topology.services.map((s) => s.maxDeliveries));
  const retention = new Map<string, number>();
  for (const s of topology.services) {
    const own = b.services[s.name]!;
    retention.set(own.queue, topology.retentionSeconds);
    retention.set(own.deadLetter, s.deadLetterRetentionSeconds);
  }
  if (b.replies && topology.replies)
    retention.set(b.replies.queue, topology.replies.retentionSeconds);

  put(
    `# Generated by cloudmom from the topology "${topology.name}"${options.stage ? ` (stage ${options.stage})` : ''}; do not edit:`,
    '# regenerate with `npm run infra` (or `cloudmom infra cloudflare`).',
    '#',
    '# Create the queues once per account (retention from the topology), then deploy the front',
    '# Worker and one Worker per service:',
    '#',
  );
  for (const [q, seconds] of retention)
    put(`#   npx wrangler queues create ${q} --message-retention-period-secs ${seconds}`);
  put(`#   npx wrangler deploy --config wrangler.toml`);
  for (const s of topology.services)
    put(`#   npx wrangler deploy --config wrangler.toml --env ${s.name}`);
  put(
    '#',
    '# Queues have no topic: each service has its own queue, and a Worker publishes a target',
    "# through the producer binding of the queue of the target's service (cloudflareBindings()",
    '# in cloudmom/infra gives the binding names). max_retries = maxDeliveries, so cloudmom',
    "# dead-letters first, with the reason; the queue's dead_letter_queue is the backstop.",
    '',
    `name = ${str(name)}`,
    `main = ${str(main)}`,
    `compatibility_date = ${str(date)}`,
    `compatibility_flags = [${flags.map(str).join(', ')}]`,
    '',
  );
  vars('');
  put('# The front Worker: publishes to every service queue, consumes the replies.');
  for (const s of Object.values(b.services)) producer('', s.binding, s.queue);
  if (b.replies) {
    producer('', b.replies.binding, b.replies.queue);
    put(
      '[[queues.consumers]]',
      `queue = ${str(b.replies.queue)}`,
      'max_batch_size = 100',
      'max_batch_timeout = 1',
      `max_retries = ${maxDeliveries}`,
      'retry_delay = 1',
      '',
    );
  }
  for (const s of topology.services) {
    const own = b.services[s.name]!;
    const env = `env.${s.name}.`;
    put(
      `# Service "${s.name}"${s.description ? `: ${s.description.replace(/\s+/g, ' ')}` : ''}`,
      `# Targets: ${s.targets.map((t) => t.name).join(', ')}.`,
      `[env.${s.name}]`,
      '',
    );
    vars(env);
    for (const other of Object.values(b.services)) producer(env, other.binding, other.queue);
    producer(env, own.deadLetterBinding, own.deadLetter);
    if (s.replies && b.replies) producer(env, b.replies.binding, b.replies.queue);
    put(
      `[[${env}queues.consumers]]`,
      `queue = ${str(own.queue)}`,
      `max_batch_size = ${s.batchSize}`,
      `max_batch_timeout = ${batchTimeout}`,
      `max_retries = ${s.maxDeliveries}`,
      `dead_letter_queue = ${str(own.deadLetter)}`,
      `retry_delay = ${Math.ceil(s.retry.baseDelayMs / 1000)}`,
      `max_concurrency = ${maxConcurrency ?? Math.min(MAX_CONCURRENCY, s.concurrency)}`,
      '',
    );
  }
  return [{ path: 'wrangler.toml', content: `${lines.join('\n').trimEnd()}\n` }];
}
