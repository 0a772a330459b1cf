/**
 * Broker URLs: one string names a broker on any platform, for `createBroker(url)` and the
 * `cloudmom` CLI. {@link parseBrokerUrl} is pure (no I/O, no environment); {@link createBroker}
 * loads the platform's adapter with a dynamic `import()` only when asked, so importing
 * `cloudmom` loads no adapter and no cloud SDK.
 *
 * | URL | broker |
 * |---|---|
 * | `memory://[queue]` | `MemoryBroker` (one process only) |
 * | `sqs://<name or ARN>`, `sqs://<host>/<account>/<name>` (a queue URL, https) | `SqsBroker` |
 * | `sns://<name or ARN>?queue=<queue>` | `SnsBroker` |
 * | `servicebus://<namespace>/<queue>`, `servicebus://<namespace>/<topic>/<subscription>` | `ServiceBusBroker` |
 * | `pubsub://<project>/<topic>?subscription=<s>` | `PubSubBroker` |
 * | `amqp://[user:pass@]host[:port][/vhost]?queue=<q>` (and `amqps://`) | `AmqpBroker` |
 * | `kafka://host:port[,host:port...]/<topic>` | `KafkaBroker` |
 * | `cloudflare://<queue>` (inside a Worker, with the binding in `options.queue`) | `CloudflareQueueBroker` |
 */
import type { Broker, BrokerOptions } from './broker.ts';
import { InvalidArgumentError } from './errors.ts';
import { MemoryBroker } from './memory.ts';
import { optionalPeer } from './peer.ts';

/**
 * The platforms a broker URL can name (its scheme; `amqps` is `amqp` over TLS).
 *
 * @example
 * ```ts
 * const platform: BrokerPlatform = parseBrokerUrl('sns://events').platform; // "sns"
 * ```
 */
export type BrokerPlatform =
  | 'memory'
  | 'sqs'
  | 'sns'
  | 'servicebus'
  | 'pubsub'
  | 'amqp'
  | 'kafka'
  | 'cloudflare';

/**
 * What a broker URL says, as {@link parseBrokerUrl} reads it: the platform, the broker class
 * and the constructor options it implies. No secrets: an AMQP password stays in
 * `options.url` (shown masked in {@link BrokerUrl.display}); a Service Bus connection string
 * never comes from a URL.
 *
 * @example
 * ```ts
 * const d: BrokerUrl = parseBrokerUrl('sqs://orders?dlq=orders-dlq');
 * d.broker;  // "SqsBroker"
 * d.options; // { queue: "orders", deadLetterQueue: "orders-dlq" }
 * ```
 */
export interface BrokerUrl {
  readonly platform: BrokerPlatform;
  /** The package subpath of the broker, e.g. `cloudmom/aws`. */
  readonly module: string;
  /** The broker class `createBroker` constructs. */
  readonly broker:
    | 'MemoryBroker'
    | 'SqsBroker'
    | 'SnsBroker'
    | 'ServiceBusBroker'
    | 'PubSubBroker'
    | 'AmqpBroker'
    | 'KafkaBroker'
    | 'CloudflareQueueBroker';
  /** Constructor options from the URL (core ones such as `concurrency` included). */
  readonly options: Readonly<Record<string, unknown>>;
  /** AWS (sqs, sns): the client settings `?region=` and `?endpoint=`, when given. */
  readonly aws?: { readonly region?: string; readonly endpoint?: string };
  /** Service Bus: the namespace host the URL names (checked against the connection string). */
  readonly namespace?: string;
  /** The URL with any password masked, for output and logs. */
  readonly display: string;
}

type Kind = 'string' | 'int' | 'bool' | 'list';
/** Query parameter → [option key, kind]. */
type Spec = Readonly<Record<string, readonly [string, Kind]>>;

const CORE: Spec = {
  concurrency: ['concurrency', 'int'],
  maxDeliveries: ['maxDeliveries', 'int'],
  requestTimeoutMs: ['requestTimeoutMs', 'int'],
  unknownTarget: ['unknownTarget', 'string'],
};

const AWS_CLIENT: Spec = { region: ['region', 'string'], endpoint: ['endpoint', 'string'] };
const SQS_COMMON: Spec = {
  ...CORE,
  ...AWS_CLIENT,
  dlq: ['deadLetterQueue', 'string'],
  waitTimeSeconds: ['waitTimeSeconds', 'int'],
  visibilityTimeoutSeconds: ['visibilityTimeoutSeconds', 'int'],
  replyQueuePrefix: ['replyQueuePrefix', 'string'],
  pollers: ['pollers', 'int'],
};

/**
 * The query parameters each scheme takes, each with the option it sets and its kind
 * (documented in docs/cli.md).
 *
 * @example
 * ```ts
 * Object.keys(URL_PARAMETERS.sqs); // ["concurrency", ..., "region", "endpoint", "dlq", ...]
 * ```
 */
export const URL_PARAMETERS: Readonly<
  Record<
    BrokerPlatform,
    Readonly<Record<string, readonly [option: string, kind: 'string' | 'int' | 'bool' | 'list']>>
  >
> = {
  memory: { ...CORE, publishTo: ['publishTo', 'string'] },
  sqs: { ...SQS_COMMON, publishTo: ['publishTo', 'string'] },
  sns: { ...SQS_COMMON, queue: ['queue', 'string'] },
  servicebus: {
    ...CORE,
    publishTo: ['publishTo', 'string'],
    replyQueue: ['replyQueue', 'string'],
    replySessions: ['replySessions', 'bool'],
    sessions: ['sessions', 'bool'],
    maxConcurrentSessions: ['maxConcurrentSessions', 'int'],
    sessionIdleMs: ['sessionIdleMs', 'int'],
    maxMessageBytes: ['maxMessageBytes', 'int'],
    maxRetryHoldMs: ['maxRetryHoldMs', 'int'],
    poisonQueue: ['poisonQueue', 'string'],
  },
  pubsub: {
    ...CORE,
    subscription: ['subscription', 'list'],
    deadLetterTopic: ['deadLetterTopic', 'string'],
    replyTopic: ['replyTopic', 'string'],
    replySubscription: ['replySubscription', 'string'],
    instanceId: ['instanceId', 'string'],
  },
  amqp: {
    ...CORE,
    queue: ['queue', 'string'],
    exchange: ['exchange', 'string'],
    exchangeType: ['exchangeType', 'string'],
    bindings: ['bindings', 'list'],
    queueType: ['queueType', 'string'],
    deliveryLimit: ['deliveryLimit', 'int'],
    deadLetterExchange: ['deadLetterExchange', 'string'],
    deadLetterQueue: ['deadLetterQueue', 'string'],
    declare: ['declare', 'bool'],
    prefetch: ['prefetch', 'int'],
    replyQueuePrefix: ['replyQueuePrefix', 'string'],
    maxMessageBytes: ['maxMessageBytes', 'int'],
  },
  kafka: {
    ...CORE,
    groupId: ['groupId', 'string'],
    clientId: ['clientId', 'string'],
    topics: ['topics', 'list'],
    deadLetterTopic: ['deadLetterTopic', 'string'],
    replyTopic: ['replyTopic', 'string'],
    maxMessageBytes: ['maxMessageBytes', 'int'],
    compression: ['compression', 'string'],
    prefetch: ['prefetch', 'int'],
    startFrom: ['startFrom', 'string'],
    maxWaitMs: ['maxWaitMs', 'int'],
    orderKeyless: ['orderKeyless', 'bool'],
    autocreateTopics: ['autocreateTopics', 'bool'],
    tls: ['tls', 'bool'],
  },
  cloudflare: { ...CORE },
};

const SCHEMES: Readonly<Record<string, BrokerPlatform>> = {
  memory: 'memory',
  sqs: 'sqs',
  sns: 'sns',
  servicebus: 'servicebus',
  pubsub: 'pubsub',
  amqp: 'amqp',
  amqps: 'amqp',
  kafka: 'kafka',
  cloudflare: 'cloudflare',
};

const MODULES: Readonly<Record<BrokerPlatform, [string, BrokerUrl['broker']]>> = {
  memory: ['cloudmom', 'MemoryBroker'],
  sqs: ['cloudmom/aws', 'SqsBroker'],
  sns: ['cloudmom/aws', 'SnsBroker'],
  servicebus: ['cloudmom/azure', 'ServiceBusBroker'],
  pubsub: ['cloudmom/gcp', 'PubSubBroker'],
  amqp: ['cloudmom/amqp', 'AmqpBroker'],
  kafka: ['cloudmom/kafka', 'KafkaBroker'],
  cloudflare: ['cloudmom/cloudflare', 'CloudflareQueueBroker'],
};

const SCHEME_LIST = Object.keys(SCHEMES)
  .map((s) => `${s}://`)
  .join(', ');

/**
 * Reads a broker URL into a typed description (pure: no I/O, no environment). Throws
 * `InvalidArgumentError` for an unknown scheme, a missing part, or a query parameter the
 * scheme does not take (the message lists the ones it does).
 *
 * @example
 * ```ts
 * parseBrokerUrl('servicebus://my-ns/orders').options;          // { queue: "orders" }
 * parseBrokerUrl('pubsub://my-project/events?subscription=billing').options;
 * // { projectId: "my-project", topic: "events", subscription: "billing" }
 * parseBrokerUrl('kafka://127.0.0.1:9092/orders?groupId=billing').options;
 * // { brokers: ["127.0.0.1:9092"], topic: "orders", groupId: "billing" }
 * ```
 */
export function parseBrokerUrl(url: string): BrokerUrl {
  if (typeof url !== 'string' || url === '')
    throw new InvalidArgumentError(`a broker URL is a non-empty string, e.g. sqs://orders`);
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^?#]*)(?:\?([^#]*))?$/i.exec(url);
  if (!m) throw new InvalidArgumentError(`not a broker URL: "${mask(url)}" (${SCHEME_LIST})`);
  const scheme = m[1]!.toLowerCase();
  const platform = SCHEMES[scheme];
  if (platform === undefined)
    throw new InvalidArgumentError(`unknown broker URL scheme "${scheme}://" (${SCHEME_LIST})`);
  const rest = decodeURIComponent(m[2]!);
  const query = readQuery(m[3] ?? '', platform);
  const { aws, options } = splitAws(platform, query);
  const [module, broker] = MODULES[platform];
  const base = { platform, module, broker, display: mask(url) };
  const where = `${scheme}://`;
  switch (platform) {
    case 'memory':
      return { ...base, options: rest ? { queue: rest, ...options } : options };
    case 'sqs': {
      const queue = /^[^/]+\/[^/]+\/[^/]+$/.test(rest) ? `https://${rest}` : rest;
      need(queue, 'a queue name, ARN or URL', where, 'sqs://orders');
      return { ...base, aws, options: { queue, ...options } };
    }
    case 'sns':
      need(rest, 'a topic name or ARN', where, 'sns://events?queue=billing-events');
      return { ...base, aws, options: { topic: rest, ...options } };
    case 'servicebus': {
      const parts = rest.split('/');
      const [namespace, entity, subscription, ...extra] = parts;
      const sub =
        subscription?.toLowerCase() === 'subscriptions' && extra.length === 1
          ? extra[0]
          : extra.length === 0
            ? subscription
            : undefined;
      if (!namespace || !entity || (subscription !== undefined && !sub))
        throw new InvalidArgumentError(
          `servicebus:// needs a namespace and a queue, or a topic and a subscription: servicebus://<namespace>/<queue> or servicebus://<namespace>/<topic>/<subscription>`,
        );
      const entityOptions =
        sub !== undefined ? { topic: entity, subscription: sub } : { queue: entity };
      return { ...base, namespace, options: { ...entityOptions, ...options } };
    }
    case 'pubsub': {
      const [projectId, topic, ...extra] = rest.split('/');
      if (!projectId || !topic || extra.length > 0)
        throw new InvalidArgumentError(
          'pubsub:// needs a project and a topic: pubsub://<project>/<topic>?subscription=<name>',
        );
      return { ...base, options: { projectId, topic, ...options } };
    }
    case 'amqp': {
      // The URL without cloudmom's query parameters is the connection URL (credentials in it).
      const connection = `${scheme}://${m[2]!}`;
      try {
        new URL(connection);
      } catch (cause) {
        throw new InvalidArgumentError(`not an AMQP URL: "${mask(url)}"`, { cause });
      }
      return { ...base, options: { url: connection, ...options } };
    }
    case 'kafka': {
      const slash = rest.indexOf('/');
      const hosts = (slash < 0 ? rest : rest.slice(0, slash)).split(',').filter(Boolean);
      const topic = slash < 0 ? '' : rest.slice(slash + 1);
      if (hosts.length === 0 || hosts.some((h) => !/^[^:/\s]+:\d+$/.test(h)))
        throw new InvalidArgumentError(
          'kafka:// needs bootstrap servers as host:port (comma-separated): kafka://127.0.0.1:9092/orders',
        );
      const { tls, ...rest2 } = options as { tls?: boolean };
      return {
        ...base,
        options: {
          brokers: hosts,
          ...(topic ? { topic } : {}),
          ...(tls ? { connection: { tls: {} } } : {}),
          ...rest2,
        },
      };
    }
    case 'cloudflare':
      need(rest, 'a queue name', where, 'cloudflare://orders');
      return { ...base, options: { queueName: rest, ...options } };
  }
}

function need(value: string, what: string, where: string, example: string): void {
  if (!value) throw new InvalidArgumentError(`${where} needs ${what}, e.g. ${example}`);
}

function readQuery(query: string, platform: BrokerPlatform): Record<string, unknown> {
  const spec = URL_PARAMETERS[platform];
  const out: Record<string, unknown> = {};
  if (query === '') return out;
  const scheme = `${platform}://`;
  for (const [key, raw] of new URLSearchParams(query)) {
    if (key === 'connectionString')
      throw new InvalidArgumentError(
        'a connection string does not belong in a URL (shell history, process lists): set SERVICEBUS_CONNECTION_STRING instead',
      );
    const entry = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (entry === undefined)
      throw new InvalidArgumentError(
        `${scheme} does not take the parameter "${key}" (valid: ${Object.keys(spec).join(', ')})`,
      );
    const [option, kind] = entry;
    if (Object.hasOwn(out, option))
      throw new InvalidArgumentError(`${scheme}: the parameter "${key}" is given twice`);
    out[option] = convert(raw, kind, key, scheme);
  }
  return out;
}

function convert(raw: string, kind: Kind, key: string, scheme: string): unknown {
  switch (kind) {
    case 'string':
      if (raw === '') throw new InvalidArgumentError(`${scheme}: "${key}" must not be empty`);
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw))
        throw new InvalidArgumentError(
          `${scheme}: "${key}" must be a whole number, got "${raw.slice(0, 40)}"`,
        );
      return Number(raw);
    }
    case 'bool':
      if (raw === 'true' || raw === '1' || raw === '') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new InvalidArgumentError(`${scheme}: "${key}" must be true or false`);
    case 'list': {
      const items = raw.split(',').filter(Boolean);
      if (items.length === 0) throw new InvalidArgumentError(`${scheme}: "${key}" is empty`);
      return items.length === 1 && key === 'subscription' ? items[0] : items;
    }
  }
}

function splitAws(
  platform: BrokerPlatform,
  query: Record<string, unknown>,
): { aws?: { region?: string; endpoint?: string }; options: Record<string, unknown> } {
  if (platform !== 'sqs' && platform !== 'sns') return { options: query };
  const { region, endpoint, ...options } = query as { region?: string; endpoint?: string };
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint))
    throw new InvalidArgumentError(
      `${platform}://: endpoint must be an http(s) URL, e.g. ?endpoint=http://127.0.0.1:5000`,
    );
  const aws =
    region === undefined && endpoint === undefined
      ? undefined
      : {
          ...(region === undefined ? {} : { region }),
          ...(endpoint === undefined ? {} : { endpoint }),
        };
  return aws ? { aws, options } : { options };
}

/** The URL with the password of its authority masked. */
function mask(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@?#:]*:)[^/@?#]*@/i, '$1***@');
}

/** The adapters, by module: loaded with a non-literal `import()`, so bundlers leave them out. */
const ADAPTERS: Readonly<Record<string, string>> = {
  'cloudmom/aws': '../adapters/aws/index.ts',
  'cloudmom/azure': '../adapters/azure/index.ts',
  'cloudmom/gcp': '../adapters/gcp/index.ts',
  'cloudmom/amqp': '../adapters/amqp/index.ts',
  'cloudmom/kafka': '../adapters/kafka/index.ts',
  'cloudmom/cloudflare': '../adapters/cloudflare/index.ts',
};

type BrokerClass = new (options: Record<string, unknown>) => Broker;

/**
 * A broker from a URL (see {@link parseBrokerUrl} for the forms), its options merged with
 * `options` (which win; unknown keys are refused by the broker's constructor). The adapter is
 * loaded on call, so this is async; a missing cloud SDK fails with an `InvalidArgumentError`
 * naming the package to install. Meant for scripts, containers and the CLI: in a bundled
 * function, construct the broker class itself (bundlers do not follow the adapter import).
 *
 * - `sqs://`, `sns://`: credentials from the environment (AWS SDK chain); `?region=` and
 *   `?endpoint=` build the client (else `AWS_REGION`, `AWS_ENDPOINT_URL` apply).
 * - `servicebus://`: the connection string comes from `options.connectionString` or the
 *   environment variable `SERVICEBUS_CONNECTION_STRING`, never from the URL; its endpoint must
 *   be the URL's namespace (`<ns>` or `<ns>.servicebus.windows.net`).
 * - `cloudflare://`: only inside a Worker, with the producer binding as `options.queue`.
 *
 * @example
 * ```ts
 * import { createBroker } from 'cloudmom';
 * const broker = await createBroker('sqs://orders?region=eu-west-1', { concurrency: 20 });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * ```
 */
export async function createBroker(
  url: string,
  options: BrokerOptions & Record<string, unknown> = {},
): Promise<Broker> {
  const d = parseBrokerUrl(url);
  if (options === null || typeof options !== 'object')
    throw new InvalidArgumentError('createBroker: options must be an object');
  const merged: Record<string, unknown> = { ...d.options, ...options };
  if (d.platform === 'memory') return new MemoryBroker(merged);
  if (d.platform === 'cloudflare' && merged.queue === undefined)
    throw new InvalidArgumentError(
      'cloudflare:// works only inside a Worker, with the queue binding: ' +
        "createBroker('cloudflare://orders', { queue: env.ORDERS }). Outside a Worker (the CLI), " +
        'Cloudflare Queues has no client to connect with: use `wrangler queues` or publish from a Worker',
    );
  if (d.platform === 'servicebus') checkServiceBus(d, merged);
  if (d.aws !== undefined && merged.client === undefined) {
    const sdk = optionalPeer<Record<string, new (config: object) => unknown>>(
      '@aws-sdk/client-sqs',
      'cloudmom/aws',
    )();
    const client = new sdk.SQSClient!(d.aws);
    if (d.platform === 'sqs') merged.client = client;
    else {
      if (merged.sqsClient === undefined) merged.sqsClient = client;
      const sns = optionalPeer<Record<string, new (config: object) => unknown>>(
        '@aws-sdk/client-sns',
        'cloudmom/aws',
      )();
      merged.client = new sns.SNSClient!(d.aws);
    }
  }
  const adapter = (await import(ADAPTERS[d.module]!)) as Record<string, BrokerClass>;
  const Class = adapter[d.broker]!;
  return new Class(merged);
}

/** The connection string is there and is for the URL's namespace (its value is never shown). */
function checkServiceBus(d: BrokerUrl, merged: Record<string, unknown>): void {
  if (merged.client !== undefined) return;
  const cs = merged.connectionString ?? process.env.SERVICEBUS_CONNECTION_STRING;
  if (typeof cs !== 'string' || cs === '')
    throw new InvalidArgumentError(
      `servicebus://${d.namespace}: set the environment variable SERVICEBUS_CONNECTION_STRING ` +
        `to a connection string of that namespace (or pass options.connectionString or options.client)`,
    );
  merged.connectionString = cs;
  const host = /(?:^|;)\s*Endpoint\s*=\s*sb:\/\/([^/;]+)/i.exec(cs)?.[1]?.toLowerCase();
  const ns = d.namespace!.toLowerCase();
  if (host !== undefined && host !== ns && !host.startsWith(`${ns}.`))
    throw new InvalidArgumentError(
      `servicebus://${d.namespace}: the connection string is for the namespace ${host}; ` +
        `use servicebus://${host.replace(/\.servicebus\.windows\.net$/, '')}/... or that namespace's connection string`,
    );
}
