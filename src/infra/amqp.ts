/**
 * The RabbitMQ generator: a topology → `definitions.json`, imported with
 * `rabbitmqctl import_definitions` (or the management API, or Amazon MQ's console), so the
 * brokers declare nothing (`declare: false`).
 *
 * Shape (names from {@link Topology.names}, the same on every platform):
 *
 * - the topic exchange `<prefix>`: `publish()` sends there with routing key = target;
 * - per service a quorum queue `<prefix>-<service>`, bound with one routing key per target it
 *   serves (a target nobody serves is unroutable: `publish()` rejects), with
 *   `x-delivery-limit` above the service's `maxDeliveries` (RabbitMQ's own backstop: cloudmom
 *   dead-letters first, with the reason) and `x-dead-letter-exchange` = the service's
 *   dead-letter exchange; an ordered service's queue has a single active consumer;
 * - per service a dead-letter exchange (fanout) and quorum queue, both named
 *   `<prefix>-<service>-dead-letter` (exchanges and queues are separate namespaces): one per
 *   service, so `cloudmom dlq` and a redrive see one service's dead letters;
 * - the reply queue `<prefix>-replies` (quorum; replies to the target `reply`) and a policy
 *   on it and on the per-instance reply queues of `request()` (`<prefix>-replies.<id>`, the
 *   brokers' `replyQueuePrefix`): a length cap and `replies.retentionSeconds` as message TTL;
 * - policies with the message TTL of each queue (`retentionSeconds`, and
 *   `deadLetterRetentionSeconds` for the dead-letter queues);
 * - per service a user `<prefix>-<service>` without a password (set one with
 *   `rabbitmqctl change_password`, or use x509 / OAuth 2) whose permissions are its own
 *   queue, its dead-letter exchange, the app exchange and its reply queues; `users: false`
 *   when users are managed elsewhere. Publishing a reply needs write on the default exchange
 *   (`amq.default`), which RabbitMQ cannot narrow per queue: the brokers' reply allow-list
 *   does.
 *
 * Encryption at rest is the node's (disk encryption; Amazon MQ encrypts by default): RabbitMQ
 * has no per-queue setting.
 *
 * @example
 * ```ts
 * import { generateAmqp } from 'cloudmom/infra';
 * const [file] = generateAmqp(topology, { stage: 'prod' });
 * JSON.parse(file!.content).queues.length;
 * ```
 * @module
 */
import { InvalidArgumentError } from '../errors.ts';
import type { RetryOptions } from '../options.ts';
import type { ServiceSpec, Topology } from '../topology.ts';
import { checkOptionKeys } from '../util.ts';
import { integerOption } from './ranges.ts';
import type { GeneratedFile } from './types.ts';

/**
 * Options of {@link generateAmqp} (and of {@link amqpBrokerOptions}, which must get the same).
 *
 * @example
 * ```ts
 * const options: AmqpInfraOptions = { stage: 'prod', vhost: 'shop', deliveryLimit: 20 };
 * ```
 */
export interface AmqpInfraOptions {
  /** Stage of the names (`<name>-<stage>-…`). Default: none. */
  readonly stage?: string;
  /** Virtual host of every resource. Default `/`. */
  readonly vhost?: string;
  /**
   * `x-delivery-limit` of every service queue; must be above each service's
   * `maxDeliveries`. Default: twice the service's `maxDeliveries`.
   */
  readonly deliveryLimit?: number;
  /** Most replies a reply queue keeps (`max-length` of the reply policy). Default 10,000. */
  readonly replyQueueMaxLength?: number;
  /** Emit a user per service with its permissions. Default true. */
  readonly users?: boolean;
  /** The `rabbitmq_version` the file declares (informative). Default `3.10.8` (the oldest tested). */
  readonly rabbitmqVersion?: string;
}

const OPTION_KEYS = [
  'stage',
  'vhost',
  'deliveryLimit',
  'replyQueueMaxLength',
  'users',
  'rabbitmqVersion',
] as const satisfies readonly (keyof AmqpInfraOptions)[];

/** Resolved options. */
interface Settings {
  readonly stage: string | undefined;
  readonly vhost: string;
  readonly deliveryLimit: number | undefined;
  readonly replyMaxLength: number;
  readonly users: boolean;
  readonly version: string;
}

function settings(options: AmqpInfraOptions, where: string): Settings {
  checkOptionKeys(options, OPTION_KEYS, where);
  const text = (v: unknown, fallback: string, at: string): string => {
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || v === '')
      throw new InvalidArgumentError(`${where}: ${at} must be a non-empty string`);
    return v;
  };
  if (options.users !== undefined && typeof options.users !== 'boolean')
    throw new InvalidArgumentError(`${where}: users must be true or false`);
  return {
    stage: options.stage,
    vhost: text(options.vhost, '/', 'vhost'),
    deliveryLimit:
      options.deliveryLimit === undefined
        ? undefined
        : integerOption(options.deliveryLimit, 0, 1, 10_000, `${where}: deliveryLimit`),
    replyMaxLength: integerOption(
      options.replyQueueMaxLength,
      10_000,
      1,
      100_000_000,
      `${where}: replyQueueMaxLength`,
    ),
    users: options.users ?? true,
    version: text(options.rabbitmqVersion, '3.10.8', 'rabbitmqVersion'),
  };
}

/** What one service gets, shared by the file and the broker options. */
interface ServicePlan {
  readonly queue: string;
  readonly deadLetter: string;
  readonly deliveryLimit: number;
  readonly queueArguments: Readonly<Record<string, unknown>>;
}

function plan(s: ServiceSpec, topology: Topology, o: Settings, where: string): ServicePlan {
  const own = topology.names(o.stage).services[s.name]!;
  const deliveryLimit = o.deliveryLimit ?? 2 * s.maxDeliveries;
  if (deliveryLimit <= s.maxDeliveries)
    throw new InvalidArgumentError(
      `${where}: deliveryLimit (${deliveryLimit}) must be above service "${s.name}"'s maxDeliveries (${s.maxDeliveries}), else RabbitMQ dead-letters before cloudmom records the reason; raise deliveryLimit or leave it unset`,
    );
  return {
    queue: own.queue,
    deadLetter: own.deadLetter,
    deliveryLimit,
    queueArguments: s.ordered ? { 'x-single-active-consumer': true } : {},
  };
}

/** A regular expression matching exactly `name` (RabbitMQ policies and permissions). */
function exactly(name: string): string {
  return `^${quote(name)}$`;
}

function quote(name: string): string {
  return name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The prefix of the per-instance reply queues of `request()`. */
function replyPrefix(replies: string): string {
  return `${replies}.`;
}

/**
 * Generates `definitions.json` for a topology (see the module for the shape).
 *
 * @example
 * ```ts
 * const [file] = generateAmqp(topology);
 * // rabbitmqctl import_definitions definitions.json
 * ```
 */
export function generateAmqp(topology: Topology, options: AmqpInfraOptions = {}): GeneratedFile[] {
  const where = 'generateAmqp';
  const o = settings(options, where);
  const n = topology.names(o.stage);
  const vhost = o.vhost;
  const exchange = (name: string, type: 'topic' | 'fanout') => ({
    name,
    vhost,
    type,
    durable: true,
    auto_delete: false,
    internal: false,
    arguments: {},
  });
  const queue = (name: string, args: Record<string, unknown>) => ({
    name,
    vhost,
    durable: true,
    auto_delete: false,
    arguments: { 'x-queue-type': 'quorum', ...args },
  });
  const binding = (source: string, destination: string, routingKey: string) => ({
    source,
    vhost,
    destination,
    destination_type: 'queue',
    routing_key: routingKey,
    arguments: {},
  });
  const policy = (name: string, pattern: string, definition: Record<string, unknown>) => ({
    name,
    vhost,
    pattern,
    'apply-to': 'queues',
    priority: 0,
    definition,
  });

  const exchanges = [exchange(n.topic, 'topic')];
  const queues = [];
  const bindings = [];
  const policies = [];
  const users = [];
  const permissions = [];
  for (const s of topology.services) {
    const p = plan(s, topology, o, where);
    exchanges.push(exchange(p.deadLetter, 'fanout'));
    queues.push(
      queue(p.queue, {
        'x-dead-letter-exchange': p.deadLetter,
        'x-delivery-limit': p.deliveryLimit,
        ...p.queueArguments,
      }),
      queue(p.deadLetter, {}),
    );
    for (const t of s.targets) bindings.push(binding(n.topic, p.queue, t.name));
    bindings.push(binding(p.deadLetter, p.deadLetter, ''));
    policies.push(
      policy(p.queue, exactly(p.queue), { 'message-ttl': topology.retentionSeconds * 1000 }),
      policy(p.deadLetter, exactly(p.deadLetter), {
        'message-ttl': s.deadLetterRetentionSeconds * 1000,
      }),
    );
    if (o.users) {
      users.push({ name: p.queue, password_hash: '', tags: [] });
      const replyQueues = n.replies ? [`${quote(replyPrefix(n.replies))}.*`] : [];
      permissions.push({
        user: p.queue,
        vhost,
        // declare and delete its request() reply queues (the rest is provisioned here)
        configure: replyQueues.length > 0 ? `^${replyQueues[0]}$` : '^$',
        // publish, dead-letter copies, replies through the default exchange
        write: `^(${[n.topic, p.deadLetter, 'amq.default'].map(quote).join('|')})$`,
        // consume its queue and its reply queues
        read: `^(${[quote(p.queue), ...(n.replies ? [quote(n.replies)] : []), ...replyQueues].join('|')})$`,
      });
    }
  }
  if (topology.replies && n.replies) {
    queues.push(queue(n.replies, {}));
    policies.push(
      policy(n.replies, `^${quote(n.replies)}(\\..+)?$`, {
        'max-length': o.replyMaxLength,
        'message-ttl': topology.replies.retentionSeconds * 1000,
      }),
    );
  }
  const file = {
    $comment: `Generated by cloudmom from the topology "${topology.name}"${o.stage ? ` (stage ${o.stage})` : ''}; do not edit: regenerate with \`npm run infra\` (or \`cloudmom infra amqp\`). Import with \`rabbitmqctl import_definitions definitions.json\` (idempotent). Users have no password: set one with \`rabbitmqctl change_password\` (or use x509 / OAuth 2).`,
    rabbitmq_version: o.version,
    ...(o.users && { users }),
    vhosts: [{ name: vhost }],
    ...(o.users && { permissions }),
    exchanges,
    queues,
    bindings,
    policies,
  };
  return [{ path: 'definitions.json', content: `${JSON.stringify(file, null, 2)}\n` }];
}

/**
 * The `AmqpBrokerOptions` of one service's broker on the generated definitions: its
 * exchange, queue, bindings (its targets), dead-letter exchange and queue, `declare: false`, the
 * delivery limit and queue arguments the file gives it (so a broker with `declare: true`
 * declares the same, without PRECONDITION_FAILED), the reply queue prefix the reply policy
 * covers, the topology's delivery settings and a reply allow-list for the topology's reply
 * queues. An ordered service gets `concurrency: 1` (its queue has a single active consumer;
 * RabbitMQ keeps order only one message at a time). Pass the generator's options.
 *
 * @example
 * ```ts
 * import { AmqpBroker } from 'cloudmom/amqp';
 * import { amqpBrokerOptions } from 'cloudmom/infra';
 * const broker = new AmqpBroker({ url: process.env.AMQP_URL, ...amqpBrokerOptions(topology, 'greeter') });
 * ```
 */
export function amqpBrokerOptions(
  topology: Topology,
  service: string,
  options: AmqpInfraOptions = {},
): {
  exchange: string;
  queue: string;
  bindings: string[];
  deadLetterExchange: string;
  deadLetterQueue: string;
  declare: false;
  deliveryLimit: number;
  queueArguments: Readonly<Record<string, unknown>>;
  replyQueuePrefix?: string;
  maxDeliveries: number;
  retry: RetryOptions;
  concurrency: number;
  unknownTarget: 'dead-letter';
  replyAllowList: string[];
} {
  const where = 'amqpBrokerOptions';
  const o = settings(options, where);
  const s = topology.service(service);
  const p = plan(s, topology, o, where);
  const n = topology.names(o.stage);
  return {
    exchange: n.topic,
    queue: p.queue,
    bindings: s.targets.map((t) => t.name),
    deadLetterExchange: p.deadLetter,
    deadLetterQueue: p.deadLetter,
    declare: false,
    deliveryLimit: p.deliveryLimit,
    queueArguments: p.queueArguments,
    ...(n.replies && { replyQueuePrefix: replyPrefix(n.replies) }),
    maxDeliveries: s.maxDeliveries,
    retry: { ...s.retry },
    concurrency: s.ordered ? 1 : s.concurrency,
    unknownTarget: 'dead-letter',
    replyAllowList: [
      ...(n.replies ? [n.replies, `${replyPrefix(n.replies)}*`] : []),
      ...topology.replyAllowList,
    ],
  };
}
