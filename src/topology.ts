/**
 * Topology as code: one typed description of an app's services, the targets each serves,
 * where replies go and how failures are retried and dead-lettered. The IaC generators
 * (`cloudmom/infra`), the AsyncAPI document and the `cloudmom` CLI are built from it, and a
 * broker takes its `maxDeliveries`, retry, concurrency and reply allow-list from it at run
 * time, so the deployed queues and the code cannot disagree.
 *
 * Names are platform-neutral and the same on every platform (lower-case letters, digits and
 * hyphens are valid for SQS, SNS, Service Bus, Pub/Sub, Cloudflare Queues, RabbitMQ and
 * Kafka alike): with prefix `p` (the topology name, or `name-stage`), the app's topic is `p`,
 * each service's queue `p-<service>` and its dead letters `p-<service>-dead-letter`, replies
 * `p-replies`.
 *
 * @example
 * ```ts
 * import { defineTopology, MemoryBroker } from 'cloudmom';
 *
 * export const topology = defineTopology({
 *   name: 'shop',
 *   defaults: { maxDeliveries: 5, timeoutSeconds: 10 },
 *   services: {
 *     orders: { targets: ['order.created', 'order.cancelled'] },
 *     mailer: { targets: { 'mail.send': { replies: false } }, concurrency: 20 },
 *   },
 * });
 *
 * const broker = new MemoryBroker(topology.brokerOptions('orders'));
 * topology.service('orders').queue;   // "shop-orders"
 * topology.serviceOf('mail.send')?.name; // "mailer"
 * ```
 * @module
 */
import { InvalidArgumentError } from './errors.ts';
import type { BrokerOptions, RetryOptions } from './options.ts';
import type { StandardSchema } from './schema.ts';

/** What a handler target declares in a topology. */
export interface TargetDefinition {
  /** What the target does (AsyncAPI operation description, IaC comments). */
  readonly description?: string;
  /** Whether its handlers return replies (default `true` when the topology has replies). */
  readonly replies?: boolean;
  /** The body's schema (Standard Schema: zod, valibot…), for AsyncAPI and validation. */
  readonly schema?: StandardSchema;
}

/** Delivery settings a service has, or inherits from `defaults`. */
export interface ServiceSettings {
  /** Deliveries before a failing message is dead-lettered with its reason (1–100, default 5). */
  readonly maxDeliveries?: number;
  /** Redelivery backoff of a failing message (the broker's `retry`). */
  readonly retry?: RetryOptions;
  /** Time a handler may run, in seconds (function timeout; 1–900, default 10). */
  readonly timeoutSeconds?: number;
  /**
   * Visibility timeout / ack deadline / lock duration, in seconds (10–43,200). Default: what
   * each platform needs for `timeoutSeconds` (AWS: 6 × timeout + batching window).
   */
  readonly lockSeconds?: number;
  /** Handlers run at once per instance (the broker's `concurrency`, 1–1,000, default 10). */
  readonly concurrency?: number;
  /** Messages per function invocation (1–100, default 10). */
  readonly batchSize?: number;
  /** How long dead letters are kept, in seconds (60–1,209,600, default 14 days). */
  readonly deadLetterRetentionSeconds?: number;
}

/** One deployable unit: a function (Lambda, Azure Function, Cloud Function, Worker) or a consumer. */
export interface ServiceDefinition extends ServiceSettings {
  /** The targets its handlers serve: names, or names with their {@link TargetDefinition}. */
  readonly targets: readonly string[] | Readonly<Record<string, TargetDefinition>>;
  /** What the service does. */
  readonly description?: string;
  /** Messages with the same group key are handled in order (FIFO queues, sessions, ordering keys). */
  readonly ordered?: boolean;
}

/** The reply destination shared by `request()` callers and `add()` replies. */
export interface RepliesDefinition {
  /** How long an uncollected reply is kept, in seconds (60–1,209,600, default 3,600). */
  readonly retentionSeconds?: number;
}

/** The input of {@link defineTopology}. */
export interface TopologyDefinition {
  /** The app's name, prefix of every resource: `[a-z][a-z0-9-]*`, 3–32 characters. */
  readonly name: string;
  /** What the app does. */
  readonly description?: string;
  /** Settings every service inherits unless it sets its own. */
  readonly defaults?: ServiceSettings;
  /** The services by name (`[a-z][a-z0-9-]*`, up to 24 characters). */
  readonly services: Readonly<Record<string, ServiceDefinition>>;
  /** The reply destination (default `{}`: one, named `<prefix>-replies`); `false` for none. */
  readonly replies?: RepliesDefinition | false;
  /** How long the app's messages are kept unconsumed, in seconds (60–1,209,600, default 4 days). */
  readonly retentionSeconds?: number;
  /** Reply destinations allowed besides the topology's own (names as the platform spells them). */
  readonly replyAllowList?: readonly string[];
}

/** A target of a resolved topology. */
export interface TargetSpec {
  readonly name: string;
  readonly description?: string;
  readonly replies: boolean;
  readonly schema?: StandardSchema;
}

/** A service of a resolved topology: every setting filled in. */
export interface ServiceSpec {
  readonly name: string;
  readonly description?: string;
  readonly targets: readonly TargetSpec[];
  readonly maxDeliveries: number;
  readonly retry: Required<RetryOptions>;
  readonly timeoutSeconds: number;
  /** Set only when the definition gave one; generators derive theirs from `timeoutSeconds`. */
  readonly lockSeconds?: number;
  readonly concurrency: number;
  readonly batchSize: number;
  readonly deadLetterRetentionSeconds: number;
  readonly ordered: boolean;
  /** Whether any of its targets replies. */
  readonly replies: boolean;
  /** Its queue / subscription name (`<name>-<service>`, without a stage). */
  readonly queue: string;
  /** Its dead-letter destination (`<name>-<service>-dead-letter`, without a stage). */
  readonly deadLetter: string;
}

/** Resource names of a topology for one stage (see {@link Topology.names}). */
export interface TopologyNames {
  /** The prefix: `name`, or `name-stage`. */
  readonly prefix: string;
  /** The app's topic / exchange, where `publish()` sends. */
  readonly topic: string;
  /** The reply destination, if the topology has one. */
  readonly replies?: string;
  /** Each service's queue and dead-letter destination. */
  readonly services: Readonly<
    Record<string, { readonly queue: string; readonly deadLetter: string }>
  >;
}

/** A validated topology, from {@link defineTopology}. */
export interface Topology {
  readonly name: string;
  readonly description?: string;
  readonly services: readonly ServiceSpec[];
  readonly replies?: { readonly name: string; readonly retentionSeconds: number };
  readonly retentionSeconds: number;
  /** The extra reply destinations of the definition (the topology's own are added by `brokerOptions`). */
  readonly replyAllowList: readonly string[];
  /** The service by name; throws `InvalidArgumentError` naming the known ones. */
  service(name: string): ServiceSpec;
  /** The service that serves `target`, if any. */
  serviceOf(target: string): ServiceSpec | undefined;
  /** Every target, in definition order. */
  targets(): readonly TargetSpec[];
  /** Resource names, optionally for a stage (`prefix = name-stage`). */
  names(stage?: string): TopologyNames;
  /**
   * Broker options for a service: `maxDeliveries`, `retry`, `concurrency`,
   * `unknownTarget: 'dead-letter'` and the reply allow-list (the topology's reply
   * destination for `stage` by its bare name, plus `replyAllowList`). Spread them into any
   * broker's options. Where the platform's reply addresses carry more than the name (SQS
   * URLs, Pub/Sub resource paths, per-request keys), use the generator's helper for that
   * platform (`cloudmom/infra`): names are matched exactly, never by suffix.
   */
  brokerOptions(
    service: string,
    options?: { stage?: string },
  ): Pick<
    BrokerOptions,
    'maxDeliveries' | 'retry' | 'concurrency' | 'unknownTarget' | 'replyAllowList'
  >;
}

const TOPOLOGY_KEYS = [
  'name',
  'description',
  'defaults',
  'services',
  'replies',
  'retentionSeconds',
  'replyAllowList',
] as const;
const SETTING_KEYS = [
  'maxDeliveries',
  'retry',
  'timeoutSeconds',
  'lockSeconds',
  'concurrency',
  'batchSize',
  'deadLetterRetentionSeconds',
] as const;
const SERVICE_KEYS = [...SETTING_KEYS, 'targets', 'description', 'ordered'] as const;
const TARGET_KEYS = ['description', 'replies', 'schema'] as const;
const RETRY_KEYS = ['baseDelayMs', 'maxDelayMs'] as const;

const NAME = /^[a-z](?:[a-z0-9-]*[a-z0-9])?$/;
/** Target names every platform can filter and route on (no spaces, quotes or wildcards). */
const TARGET = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const MAX_TARGET = 128;
/** Targets the core reserves. */
const RESERVED_TARGETS = new Set(['reply']);

const DAY = 86_400;

/**
 * Validates a topology and fills in its defaults. Unknown keys, out-of-range numbers,
 * a target served by two services, a lock shorter than the handler timeout and other
 * impossible combinations are refused with an `InvalidArgumentError` that names the path.
 *
 * @example
 * ```ts
 * const topology = defineTopology({
 *   name: 'examples',
 *   services: { greeter: { targets: ['hello', 'sum'] }, worker: { targets: ['audit'] } },
 * });
 * topology.names('dev').services.greeter?.queue; // "examples-dev-greeter"
 * ```
 */
export function defineTopology(definition: TopologyDefinition): Topology {
  const where = 'defineTopology';
  object(definition, where);
  keys(definition, TOPOLOGY_KEYS, where);
  const name = identifier(definition.name, `${where}: name`, 3, 32);
  const description = optionalText(definition.description, `${where}: description`);
  object(definition.defaults ?? {}, `${where}: defaults`);
  keys(definition.defaults ?? {}, SETTING_KEYS, `${where}: defaults`);
  const defaults = settings(definition.defaults ?? {}, `${where}: defaults`);
  object(definition.services, `${where}: services`);
  const serviceNames = Object.keys(definition.services);
  if (serviceNames.length === 0)
    throw new InvalidArgumentError(`${where}: services is empty (define at least one service)`);

  const hasReplies = definition.replies !== false;
  let replies: Topology['replies'];
  if (hasReplies) {
    const r = definition.replies ?? {};
    object(r, `${where}: replies`);
    keys(r, ['retentionSeconds'], `${where}: replies`);
    replies = {
      name: `${name}-replies`,
      retentionSeconds: int(
        r.retentionSeconds,
        3600,
        60,
        14 * DAY,
        `${where}: replies.retentionSeconds`,
      ),
    };
  }

  const owners = new Map<string, ServiceSpec>();
  const services: ServiceSpec[] = [];
  for (const serviceName of serviceNames) {
    const at = `${where}: services.${serviceName}`;
    identifier(serviceName, `${at} (the service name)`, 1, 24);
    if (serviceName === 'replies' || serviceName.endsWith('-dead-letter'))
      throw new InvalidArgumentError(
        `${at}: the name would collide with the topology's own resources; choose another`,
      );
    const def = definition.services[serviceName]!;
    object(def, at);
    keys(def, SERVICE_KEYS, at);
    const own = settings(def, at);
    const merged = { ...defaults, ...stripUndefined(own) };
    const targets = targetsOf(def.targets, `${at}.targets`, hasReplies);
    const timeoutSeconds = merged.timeoutSeconds ?? 10;
    if (merged.lockSeconds !== undefined && merged.lockSeconds < timeoutSeconds)
      throw new InvalidArgumentError(
        `${at}: lockSeconds (${merged.lockSeconds}) is shorter than timeoutSeconds (${timeoutSeconds}): a message would be redelivered while its handler still runs; raise lockSeconds or lower timeoutSeconds`,
      );
    const retry = { baseDelayMs: 250, maxDelayMs: 30_000, ...stripUndefined(merged.retry ?? {}) };
    if (retry.maxDelayMs < retry.baseDelayMs)
      throw new InvalidArgumentError(`${at}: retry.maxDelayMs is below retry.baseDelayMs`);
    const spec: ServiceSpec = Object.freeze({
      name: serviceName,
      ...(optionalText(def.description, `${at}.description`) !== undefined && {
        description: def.description,
      }),
      targets,
      maxDeliveries: merged.maxDeliveries ?? 5,
      retry: Object.freeze(retry),
      timeoutSeconds,
      ...(merged.lockSeconds !== undefined && { lockSeconds: merged.lockSeconds }),
      concurrency: merged.concurrency ?? 10,
      batchSize: merged.batchSize ?? 10,
      deadLetterRetentionSeconds: merged.deadLetterRetentionSeconds ?? 14 * DAY,
      ordered: bool(def.ordered, false, `${at}.ordered`),
      replies: targets.some((t) => t.replies),
      queue: `${name}-${serviceName}`,
      deadLetter: `${name}-${serviceName}-dead-letter`,
    });
    for (const t of targets) {
      const other = owners.get(t.name);
      if (other)
        throw new InvalidArgumentError(
          `${at}.targets: target "${t.name}" is already served by service "${other.name}" (one service per target)`,
        );
      owners.set(t.name, spec);
    }
    services.push(spec);
  }

  const replyAllowList = (definition.replyAllowList ?? []).map((a, i) =>
    text(a, `${where}: replyAllowList[${i}]`),
  );
  if (!Array.isArray(definition.replyAllowList ?? []))
    throw new InvalidArgumentError(`${where}: replyAllowList must be an array of names`);
  const retentionSeconds = int(
    definition.retentionSeconds,
    4 * DAY,
    60,
    14 * DAY,
    `${where}: retentionSeconds`,
  );

  const byName = new Map(services.map((s) => [s.name, s]));
  const names = (stage?: string): TopologyNames => {
    const prefix =
      stage === undefined ? name : `${name}-${identifier(stage, 'topology.names: stage', 1, 16)}`;
    const perService: Record<string, { queue: string; deadLetter: string }> = {};
    for (const s of services)
      perService[s.name] = {
        queue: `${prefix}-${s.name}`,
        deadLetter: `${prefix}-${s.name}-dead-letter`,
      };
    return Object.freeze({
      prefix,
      topic: prefix,
      ...(replies && { replies: `${prefix}-replies` }),
      services: Object.freeze(perService),
    });
  };
  const topology: Topology = {
    name,
    ...(description !== undefined && { description }),
    services: Object.freeze(services),
    ...(replies && { replies: Object.freeze(replies) }),
    retentionSeconds,
    replyAllowList: Object.freeze(replyAllowList),
    service(serviceName) {
      const s = byName.get(serviceName);
      if (!s)
        throw new InvalidArgumentError(
          `topology "${name}" has no service "${serviceName}" (services: ${[...byName.keys()].join(', ')})`,
        );
      return s;
    },
    serviceOf: (target) => owners.get(target),
    targets: () => services.flatMap((s) => s.targets),
    names,
    brokerOptions(serviceName, options = {}) {
      const s = topology.service(serviceName);
      const n = names(options.stage);
      return {
        maxDeliveries: s.maxDeliveries,
        retry: { ...s.retry },
        concurrency: s.concurrency,
        unknownTarget: 'dead-letter',
        replyAllowList: [...(n.replies ? [n.replies] : []), ...replyAllowList],
      };
    },
  };
  return Object.freeze(topology);
}

function targetsOf(
  value: ServiceDefinition['targets'] | undefined,
  at: string,
  hasReplies: boolean,
): readonly TargetSpec[] {
  if (value === undefined || value === null || typeof value !== 'object')
    throw new InvalidArgumentError(`${at}: give the targets as an array of names or an object`);
  const entries: [string, TargetDefinition][] = Array.isArray(value)
    ? value.map((t) => [t as string, {}])
    : Object.entries(value as Record<string, TargetDefinition>);
  if (entries.length === 0)
    throw new InvalidArgumentError(`${at}: a service serves at least one target`);
  const seen = new Set<string>();
  return Object.freeze(
    entries.map(([targetName, def]) => {
      if (
        typeof targetName !== 'string' ||
        !TARGET.test(targetName) ||
        targetName.length > MAX_TARGET
      )
        throw new InvalidArgumentError(
          `${at}: target ${JSON.stringify(targetName)} is not a valid name (letters, digits and . _ : -, starting with a letter or digit, up to ${MAX_TARGET} characters)`,
        );
      if (RESERVED_TARGETS.has(targetName))
        throw new InvalidArgumentError(`${at}: target "${targetName}" is reserved by cloudmom`);
      if (seen.has(targetName))
        throw new InvalidArgumentError(`${at}: target "${targetName}" is listed twice`);
      seen.add(targetName);
      const t = `${at}.${targetName}`;
      object(def, t);
      keys(def, TARGET_KEYS, t);
      const replies = bool(def.replies, hasReplies, `${t}.replies`);
      if (replies && !hasReplies)
        throw new InvalidArgumentError(
          `${t}: replies is true but the topology has replies: false; give the topology a reply destination`,
        );
      if (def.schema !== undefined && typeof def.schema?.['~standard']?.validate !== 'function')
        throw new InvalidArgumentError(
          `${t}.schema: not a Standard Schema (zod, valibot, arktype…)`,
        );
      const description = optionalText(def.description, `${t}.description`);
      return Object.freeze({
        name: targetName,
        ...(description !== undefined && { description }),
        replies,
        ...(def.schema !== undefined && { schema: def.schema }),
      });
    }),
  );
}

function settings(value: ServiceSettings, at: string): ServiceSettings {
  let retry: RetryOptions | undefined;
  if (value.retry !== undefined) {
    object(value.retry, `${at}.retry`);
    keys(value.retry, RETRY_KEYS, `${at}.retry`);
    retry = stripUndefined({
      baseDelayMs: optionalInt(value.retry.baseDelayMs, 1, 3_600_000, `${at}.retry.baseDelayMs`),
      maxDelayMs: optionalInt(value.retry.maxDelayMs, 1, 43_200_000, `${at}.retry.maxDelayMs`),
    });
  }
  return stripUndefined({
    maxDeliveries: optionalInt(value.maxDeliveries, 1, 100, `${at}.maxDeliveries`),
    retry,
    timeoutSeconds: optionalInt(value.timeoutSeconds, 1, 900, `${at}.timeoutSeconds`),
    lockSeconds: optionalInt(value.lockSeconds, 10, 43_200, `${at}.lockSeconds`),
    concurrency: optionalInt(value.concurrency, 1, 1000, `${at}.concurrency`),
    batchSize: optionalInt(value.batchSize, 1, 100, `${at}.batchSize`),
    deadLetterRetentionSeconds: optionalInt(
      value.deadLetterRetentionSeconds,
      60,
      14 * DAY,
      `${at}.deadLetterRetentionSeconds`,
    ),
  });
}

function stripUndefined<T extends object>(value: T): T {
  const out = {} as T;
  for (const [k, v] of Object.entries(value))
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function object(value: unknown, at: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidArgumentError(`${at}: must be an object`);
}

function keys(value: object, allowed: readonly string[], at: string): void {
  for (const key of Object.keys(value))
    if (!allowed.includes(key))
      throw new InvalidArgumentError(`${at}: unknown key "${key}" (known: ${allowed.join(', ')})`);
}

function identifier(value: unknown, at: string, min: number, max: number): string {
  if (typeof value !== 'string' || value.length < min || value.length > max || !NAME.test(value))
    throw new InvalidArgumentError(
      `${at}: ${JSON.stringify(value)} must be ${min}–${max} lower-case letters, digits and hyphens, starting with a letter`,
    );
  if (value.includes('--'))
    throw new InvalidArgumentError(`${at}: "${value}" has two hyphens in a row`);
  return value;
}

function text(value: unknown, at: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new InvalidArgumentError(`${at}: must be a non-empty string`);
  return value;
}

function optionalText(value: unknown, at: string): string | undefined {
  return value === undefined ? undefined : text(value, at);
}

function bool(value: unknown, fallback: boolean, at: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${at}: must be true or false`);
  return value;
}

function optionalInt(value: unknown, min: number, max: number, at: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(
      `${at}: ${String(value)} must be an integer from ${min} to ${max}`,
    );
  return value;
}

function int(value: unknown, fallback: number, min: number, max: number, at: string): number {
  return optionalInt(value, min, max, at) ?? fallback;
}
