/**
 * The AWS generator: a topology → a whole `serverless.yml` for osls 4 (the MIT fork of
 * Serverless Framework v3) — an SNS topic (SSE with `alias/aws/sns`), per service an SQS queue
 * (SSE-SQS) with a dead-letter queue (redrive after `maxDeliveries`), a raw-delivery
 * subscription filtered on the `target` attribute, a queue policy that lets only the topic
 * send, a Lambda function on an event source mapping with `ReportBatchItemFailures`, and one
 * IAM role scoped to that queue, its dead-letter queue, the reply queue and its own log group;
 * the reply queue; outputs.
 *
 * Ordered topologies get a FIFO topic and FIFO queues (`.fifo`, the one place where the AWS
 * names differ from the topology's: see {@link awsNames}). One SNS topic is FIFO or standard,
 * so a topology mixing ordered and unordered services is refused.
 *
 * @example
 * ```ts
 * import { defineTopology } from 'cloudmom';
 * import { generateAws } from 'cloudmom/infra';
 *
 * const topology = defineTopology({ name: 'shop', services: { orders: { targets: ['order.created'] } } });
 * const [file] = generateAws(topology, { handler: 'dist/handler.handler', region: 'eu-west-1' });
 * file.path; // "serverless.yml"
 * ```
 * @module
 */
import { InvalidArgumentError } from '../errors.ts';
import type { ServiceSpec, Topology } from '../topology.ts';
import { checkOptionKeys } from '../util.ts';
import type { GeneratedFile } from './types.ts';
import { type CommentLine, note, toYaml, type YamlMap, type YamlValue } from './yaml.ts';

/** Per-function settings of {@link AwsOptions.functions}. */
export interface AwsFunctionOptions {
  /** This function's handler (default: {@link AwsOptions.handler}). */
  readonly handler?: string;
  /** This function's memory in MB (default: {@link AwsOptions.memorySize}). */
  readonly memorySize?: number;
  /**
   * Most instances of the function the queue's event source mapping runs at once
   * (`ScalingConfig.MaximumConcurrency`, 2–1,000). Default: the service's `concurrency`
   * (at least 2, Lambda's minimum).
   */
  readonly maximumConcurrency?: number;
}

/**
 * Options of {@link generateAws}: how the functions are built and run. What is delivered
 * where, how often and for how long comes from the topology.
 *
 * @example
 * ```ts
 * const options: AwsOptions = {
 *   handler: 'dist/handler.handler',
 *   package: { patterns: ['!**', 'dist/handler.mjs'] },
 *   region: 'eu-west-1',
 *   functions: { orders: { memorySize: 1024 } },
 * };
 * ```
 */
export interface AwsOptions {
  /**
   * The functions' handler, as osls takes it: `<file without extension>.<export>` or a
   * variable that answers one (e.g. `${file(./bundle.cjs):handler}`). Every function runs
   * the same entrypoint by default (it finds its queue in `CLOUDMOM_QUEUE_URL`); give one
   * per service in `functions`. Default `handler.handler`.
   */
  readonly handler?: string;
  /** osls `package` settings (what goes in the zip). Default: osls's own. */
  readonly package?: {
    /** Glob patterns, e.g. `['!**', 'dist/handler.mjs']`. */
    readonly patterns?: readonly string[];
    /** Whether osls drops dev dependencies from the zip (osls's default: true). */
    readonly excludeDevDependencies?: boolean;
  };
  /** Lambda runtime, `nodejs<N>.x`. Default `nodejs22.x`. */
  readonly runtime?: string;
  /** `arm64` (default) or `x86_64`. */
  readonly architecture?: 'arm64' | 'x86_64';
  /** Memory in MB (128–10,240). Default 256. */
  readonly memorySize?: number;
  /** Region when `--region` is not given. Default `us-east-1`. */
  readonly region?: string;
  /** Stage when `--stage` is not given. Default `dev`. */
  readonly stage?: string;
  /** Days CloudWatch keeps the functions' logs (a value CloudWatch accepts). Default 365. */
  readonly logRetentionInDays?: number;
  /** `CLOUDMOM_LOG_LEVEL` of the functions. Default `warn` (bodies are never logged). */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /**
   * Seconds the event source mappings of standard queues gather a batch (0–300; FIFO
   * queues have none). Default 1. Also counts in the visibility timeout.
   */
  readonly batchingWindowSeconds?: number;
  /** More environment variables for every function (not `CLOUDMOM_*`: those are generated). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Per-service overrides, by service name. */
  readonly functions?: Readonly<Record<string, AwsFunctionOptions>>;
  /** The command the file's header names to regenerate it. Default `npx cloudmom infra aws`. */
  readonly regenerate?: string;
}

/** The AWS names of one service's resources for a stage. */
export interface AwsServiceNames {
  /** Its SQS queue (`.fifo` for an ordered service). */
  readonly queue: string;
  /** Its dead-letter queue (`.fifo` for an ordered service). */
  readonly deadLetter: string;
  /** Its Lambda function (osls: `<service>-<stage>-<function>`, the queue's name without `.fifo`). */
  readonly function: string;
  /** Its function's log group. */
  readonly logGroup: string;
}

/** The AWS names of a topology's resources for a stage (see {@link awsNames}). */
export interface AwsNames {
  /** The CloudFormation stack osls deploys (`<service>-<stage>`). */
  readonly stack: string;
  /** The SNS topic (`.fifo` when the services are ordered). */
  readonly topic: string;
  /** The reply queue, if the topology has one. */
  readonly replies?: string;
  /** Each service's queue, dead-letter queue, function and log group. */
  readonly services: Readonly<Record<string, AwsServiceNames>>;
}

/**
 * The names the generated `serverless.yml` gives a stage's resources: the topology's
 * {@link Topology.names} — AWS spells FIFO topics and queues with a `.fifo` suffix, which is
 * added here and nowhere else.
 *
 * @example
 * ```ts
 * awsNames(topology, 'dev').services.orders?.deadLetter; // "shop-dev-orders-dead-letter"
 * ```
 */
export function awsNames(topology: Topology, stage: string): AwsNames {
  return spell(topology, topology.names(stage).prefix);
}

/** AWS's length limits on the names (the stage takes what is left). */
const LIMITS = { queue: 80, function: 64, topic: 256, stack: 128 } as const;
/** Filter policies: at most 150 value combinations (one per target here). */
const MAX_FILTER_VALUES = 150;
const LOG_RETENTION = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
];
const OPTION_KEYS = [
  'handler',
  'package',
  'runtime',
  'architecture',
  'memorySize',
  'region',
  'stage',
  'logRetentionInDays',
  'logLevel',
  'batchingWindowSeconds',
  'environment',
  'functions',
  'regenerate',
] as const;
const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
/** An osls (or Fn::Sub) variable: `${expression}`. */
const variable = (expression: string) => `\${${expression}}`;
/** The prefix in the generated file: osls resolves it per stage. */
const PREFIX = variable('self:custom.prefix');
const WHERE = 'generateAws';
/** The longest stage `topology.names(stage)` takes. */
const MAX_STAGE = 16;

/**
 * Generates `serverless.yml` for a topology: the whole deployment (functions, topic,
 * queues, subscriptions, policies, roles, outputs), with the names of {@link awsNames}.
 * Throws `InvalidArgumentError` for unknown or out-of-range options and for what AWS
 * cannot provision (ordered and unordered services behind one topic, a FIFO batch above
 * 10, names past AWS's length limits, a service with more than 150 targets).
 *
 * The functions' environment carries the topology (`CLOUDMOM_MAX_DELIVERIES`,
 * `CLOUDMOM_CONCURRENCY`, `CLOUDMOM_UNKNOWN_TARGET=dead-letter`, `CLOUDMOM_REPLY_ALLOW_LIST`)
 * and the queue URLs only CloudFormation knows (`CLOUDMOM_QUEUE_URL`, `CLOUDMOM_DLQ_URL`).
 * The visibility timeout is the service's `lockSeconds`, else 6 × its timeout + the batching
 * window (AWS's advice for Lambda on SQS) rounded up to whole half minutes.
 *
 * @example
 * ```ts
 * for (const file of generateAws(topology, { region: 'eu-west-1' }))
 *   writeFileSync(file.path, file.content);
 * ```
 */
export function generateAws(topology: Topology, options: AwsOptions = {}): GeneratedFile[] {
  const o = resolveOptions(topology, options);
  const ordered = topology.services.filter((s) => s.ordered);
  if (ordered.length > 0 && ordered.length < topology.services.length)
    throw new InvalidArgumentError(
      `${WHERE}: ordered services (${list(ordered.map((s) => s.name))}) and unordered ones (${list(
        topology.services.filter((s) => !s.ordered).map((s) => s.name),
      )}) cannot share one SNS topic, which is either FIFO or standard: make every service ordered, or put the ordered ones in a topology of their own`,
    );
  const fifo = ordered.length > 0;
  for (const s of topology.services) {
    if (fifo && s.batchSize > 10)
      throw new InvalidArgumentError(
        `${WHERE}: service "${s.name}" is ordered with batchSize ${s.batchSize}, but Lambda reads FIFO queues in batches of at most 10; lower batchSize`,
      );
    if (!fifo && s.batchSize > 10 && o.batchingWindowSeconds < 1)
      throw new InvalidArgumentError(
        `${WHERE}: service "${s.name}" has batchSize ${s.batchSize}: above 10 Lambda needs a batching window of at least 1 s; raise batchingWindowSeconds or lower batchSize`,
      );
    if (s.targets.length > MAX_FILTER_VALUES)
      throw new InvalidArgumentError(
        `${WHERE}: service "${s.name}" serves ${s.targets.length} targets, but an SNS filter policy takes at most ${MAX_FILTER_VALUES} values; split the service`,
      );
  }
  const maxStage = stageBudget(topology);
  if (maxStage < o.stage.length)
    throw new InvalidArgumentError(
      `${WHERE}: with stage "${o.stage}" a name would pass AWS's limits (SQS queue ${LIMITS.queue}, Lambda function ${LIMITS.function} characters): shorten the topology or service names, or the stage`,
    );
  const names = spell(topology, PREFIX);
  const generic = spell(topology, `${topology.name}-<stage>`);
  const doc: YamlMap = {
    service: note(header(topology, o, generic, Math.min(maxStage, MAX_STAGE)), topology.name),
    frameworkVersion: '4',
    custom: note(null, { prefix: `${variable('self:service')}-${variable('sls:stage')}` }),
    provider: note(null, provider(o)),
    package: o.package ? note(null, packageSection(o.package)) : undefined,
    functions: note(
      [
        null,
        'Each function consumes its service queue (synchronous invocations; failures go to the',
        "queue's dead-letter queue). A function subscribed to the topic itself (`events: [sns: ...]`)",
        'is invoked asynchronously: Lambda retries a failed event twice, then drops it; give such a',
        'function an on-failure destination (`destinations: { onFailure: <queue ARN> }`).',
      ],
      Object.fromEntries(
        topology.services.map((s) => [s.name, fn(topology, s, o, fifo)] as const),
      ) as YamlMap,
    ),
    resources: note(null, {
      Resources: resources(topology, names, o, fifo),
      Outputs: note(null, outputs(topology)),
    }),
  };
  return [{ path: 'serverless.yml', content: toYaml(doc) }];
}

interface Resolved {
  readonly handler: string;
  readonly package?: AwsOptions['package'];
  readonly runtime: string;
  readonly architecture: 'arm64' | 'x86_64';
  readonly memorySize: number;
  readonly region: string;
  readonly stage: string;
  readonly logRetentionInDays: number;
  readonly logLevel: string;
  readonly batchingWindowSeconds: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly functions: Readonly<Record<string, AwsFunctionOptions>>;
  readonly regenerate: string;
}

function resolveOptions(topology: Topology, options: AwsOptions): Resolved {
  checkOptionKeys(options, OPTION_KEYS, WHERE);
  const stage = options.stage ?? 'dev';
  topology.names(stage); // validates the stage like every platform's
  const functions = options.functions ?? {};
  objectOption(functions, 'functions');
  for (const [name, f] of Object.entries(functions)) {
    topology.service(name); // names the known services
    objectOption(f, `functions.${name}`);
    checkOptionKeys(
      f,
      ['handler', 'memorySize', 'maximumConcurrency'],
      `${WHERE}: functions.${name}`,
    );
    if (f.handler !== undefined) text(f.handler, `functions.${name}.handler`);
    if (f.memorySize !== undefined) int(f.memorySize, 128, 10_240, `functions.${name}.memorySize`);
    if (f.maximumConcurrency !== undefined)
      int(f.maximumConcurrency, 2, 1000, `functions.${name}.maximumConcurrency`);
  }
  const environment = options.environment ?? {};
  objectOption(environment, 'environment');
  for (const [k, v] of Object.entries(environment)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new InvalidArgumentError(`${WHERE}: environment: "${k}" is not a variable name`);
    if (k.startsWith('CLOUDMOM_'))
      throw new InvalidArgumentError(
        `${WHERE}: environment: ${k} is generated from the topology (the log level is the option logLevel)`,
      );
    if (typeof v !== 'string')
      throw new InvalidArgumentError(`${WHERE}: environment.${k} must be a string`);
  }
  if (options.package !== undefined) {
    objectOption(options.package, 'package');
    checkOptionKeys(options.package, ['patterns', 'excludeDevDependencies'], `${WHERE}: package`);
    const { patterns, excludeDevDependencies } = options.package;
    if (patterns !== undefined && (!Array.isArray(patterns) || patterns.some((p) => !p)))
      throw new InvalidArgumentError(`${WHERE}: package.patterns must be an array of globs`);
    if (excludeDevDependencies !== undefined && typeof excludeDevDependencies !== 'boolean')
      throw new InvalidArgumentError(`${WHERE}: package.excludeDevDependencies must be a boolean`);
  }
  const runtime = options.runtime ?? 'nodejs22.x';
  if (!/^nodejs\d+\.x$/.test(runtime))
    throw new InvalidArgumentError(
      `${WHERE}: runtime "${runtime}" is not a Node.js runtime (e.g. nodejs22.x)`,
    );
  const architecture = options.architecture ?? 'arm64';
  if (architecture !== 'arm64' && architecture !== 'x86_64')
    throw new InvalidArgumentError(`${WHERE}: architecture must be arm64 or x86_64`);
  const region = options.region ?? 'us-east-1';
  if (!/^[a-z]{2}(?:-[a-z]+)+-\d+$/.test(region))
    throw new InvalidArgumentError(`${WHERE}: region "${region}" is not a region (e.g. eu-west-1)`);
  const logRetentionInDays = options.logRetentionInDays ?? 365;
  if (!LOG_RETENTION.includes(logRetentionInDays))
    throw new InvalidArgumentError(
      `${WHERE}: logRetentionInDays ${logRetentionInDays} is not one CloudWatch accepts (${LOG_RETENTION.join(', ')})`,
    );
  const logLevel = options.logLevel ?? 'warn';
  if (!LOG_LEVELS.includes(logLevel))
    throw new InvalidArgumentError(`${WHERE}: logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  return {
    handler: text(options.handler ?? 'handler.handler', 'handler'),
    ...(options.package !== undefined && { package: options.package }),
    runtime,
    architecture,
    memorySize: int(options.memorySize ?? 256, 128, 10_240, 'memorySize'),
    region,
    stage,
    logRetentionInDays,
    logLevel,
    batchingWindowSeconds: int(options.batchingWindowSeconds ?? 1, 0, 300, 'batchingWindowSeconds'),
    environment,
    functions,
    regenerate: text(options.regenerate ?? 'npx cloudmom infra aws', 'regenerate'),
  };
}

function objectOption(value: unknown, at: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidArgumentError(`${WHERE}: ${at} must be an object`);
}

function text(value: unknown, at: string): string {
  if (typeof value !== 'string' || value.trim() === '' || /[\n\r]/.test(value))
    throw new InvalidArgumentError(`${WHERE}: ${at} must be a non-empty one-line string`);
  return value;
}

function int(value: unknown, min: number, max: number, at: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(
      `${WHERE}: ${at} ${String(value)} must be an integer from ${min} to ${max}`,
    );
  return value;
}

const list = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');

/** The names with `prefix` in place of the topology's (a stage's prefix, or osls's variable). */
function spell(topology: Topology, prefix: string): AwsNames {
  const base = topology.names();
  const swap = (name: string) => `${prefix}${name.slice(base.prefix.length)}`;
  const fifo = topology.services.some((s) => s.ordered) ? '.fifo' : '';
  const services: Record<string, AwsServiceNames> = {};
  for (const s of topology.services) {
    const n = base.services[s.name]!;
    const queue = swap(n.queue);
    services[s.name] = {
      queue: `${queue}${s.ordered ? '.fifo' : ''}`,
      deadLetter: `${swap(n.deadLetter)}${s.ordered ? '.fifo' : ''}`,
      // osls names functions <service>-<stage>-<key>: the queue's name (the key is the service).
      function: queue,
      logGroup: `/aws/lambda/${queue}`,
    };
  }
  return {
    stack: prefix,
    topic: `${swap(base.topic)}${fifo}`,
    ...(base.replies !== undefined && { replies: swap(base.replies) }),
    services,
  };
}

/** The longest stage every name stays within AWS's limits with. */
function stageBudget(topology: Topology): number {
  const n = spell(topology, `${topology.name}-`); // an empty stage
  const room = [LIMITS.stack - n.stack.length, LIMITS.topic - n.topic.length];
  if (n.replies !== undefined) room.push(LIMITS.queue - n.replies.length);
  for (const s of Object.values(n.services))
    room.push(
      LIMITS.queue - s.queue.length,
      LIMITS.queue - s.deadLetter.length,
      LIMITS.function - s.function.length,
    );
  return Math.min(...room);
}

/** The logical id base osls gives a function (`order-sync` → `OrderDashsync`); ours follow it. */
function logicalId(service: string): string {
  const id = service.replace(/-/g, 'Dash').replace(/_/g, 'Underscore');
  return id.charAt(0).toUpperCase() + id.slice(1);
}

const ref = (id: string) => ({ Ref: id });
const getAtt = (id: string, attribute: string) => ({ 'Fn::GetAtt': [id, attribute] });

/** Visibility timeout: `lockSeconds`, else 6 × timeout + batching window, up to a half minute. */
function visibilityTimeout(s: ServiceSpec, window: number): number {
  return s.lockSeconds ?? Math.ceil((6 * s.timeoutSeconds + window) / 30) * 30;
}

function header(topology: Topology, o: Resolved, n: AwsNames, maxStage: number): CommentLine[] {
  const shown = (s: ServiceSpec) => {
    const names = s.targets.map((t) => t.name);
    return names.length <= 4
      ? names.join(', ')
      : `${names.slice(0, 3).join(', ')}, … (${names.length})`;
  };
  const width = Math.max(...topology.services.map((s) => shown(s).length));
  const qwidth = Math.max(...Object.values(n.services).map((s) => s.queue.length));
  const routes = topology.services.map((s) => {
    const queue = n.services[s.name]!.queue;
    return `  ${shown(s).padEnd(width)} → ${queue.padEnd(qwidth)} → ${s.name} λ${s.replies ? ` → ${n.replies}` : ''}`;
  });
  const fifo = topology.services.some((s) => s.ordered);
  return [
    `Generated from the topology "${topology.name}" by cloudmom/infra (generateAws): do not edit;`,
    `change the topology and run \`${o.regenerate}\`.`,
    ...(topology.description ? ['', topology.description] : []),
    '',
    `SNS${fifo ? ' FIFO' : ''} topic ${n.topic} → one subscription per service, filtered on the`,
    '`target` message attribute, raw delivery → the service queue → its Lambda function:',
    '',
    ...routes,
    '',
    'A failing message is retried, and dead-lettered by the function on its last delivery',
    "(maxDeliveries) with the reason; the queue's redrive policy is the backstop.",
    '',
    '  npx osls package                # offline, no credentials: .serverless/',
    `  npx osls deploy --stage ${o.stage.padEnd(7)} # into your account (or an emulator: AWS_ENDPOINT_URL)`,
    '',
    'osls 4 is the MIT fork of Serverless Framework v3 (v4 needs a login). Stage names of up to',
    `${maxStage} characters keep every name within AWS's limits.`,
  ];
}

function provider(o: Resolved): YamlMap {
  return {
    name: 'aws',
    runtime: o.runtime,
    architecture: o.architecture,
    stage: variable(`opt:stage, '${o.stage}'`),
    region: variable(`opt:region, '${o.region}'`),
    memorySize: o.memorySize,
    logRetentionInDays: note(
      "The functions' CloudWatch log groups, created by osls (CKV_AWS_338 asks for ≥ 1 year).",
      o.logRetentionInDays,
    ),
    deploymentBucket: {
      blockPublicAccess: true,
      versioning: true,
      serverSideEncryption: 'AES256',
    },
    environment: {
      CLOUDMOM_LOG_LEVEL: note('cloudmom never logs message bodies.', o.logLevel),
      ...o.environment,
    },
  };
}

function packageSection(p: NonNullable<AwsOptions['package']>): YamlMap {
  return {
    excludeDevDependencies: p.excludeDevDependencies,
    ...(p.patterns && { patterns: [...p.patterns] }),
  };
}

function fn(topology: Topology, s: ServiceSpec, o: Resolved, fifo: boolean): YamlMap {
  const id = logicalId(s.name);
  const own = o.functions[s.name] ?? {};
  const targets = s.targets.map((t) => t.name).join(', ');
  const description = `${topology.name} ${s.name}: ${targets} (${s.replies ? 'replies' : 'one-way'})`;
  const window = fifo ? 0 : o.batchingWindowSeconds;
  return {
    description: description.length > 256 ? `${description.slice(0, 255)}…` : description,
    handler: own.handler ?? o.handler,
    memorySize: own.memorySize,
    timeout: s.timeoutSeconds,
    role: note(
      [
        'Fn::Sub rather than the logical name: with a name osls adds a DependsOn that cfn-lint',
        "flags (W3005), and moto's CloudFormation refuses templates with findings.",
      ],
      { 'Fn::Sub': variable(`${id}Role.Arn`) },
    ),
    environment: {
      CLOUDMOM_QUEUE_URL: ref(`${id}Queue`),
      CLOUDMOM_DLQ_URL: note(
        'The function dead-letters what can never succeed itself, with the reason.',
        ref(`${id}DeadLetterQueue`),
      ),
      CLOUDMOM_MAX_DELIVERIES: note(
        "Dead-lettered by the function on this delivery (= the queue's maxReceiveCount).",
        String(s.maxDeliveries),
      ),
      CLOUDMOM_CONCURRENCY: String(s.concurrency),
      CLOUDMOM_UNKNOWN_TARGET: note(
        'A target no handler serves is dead-lettered with the reason, not dropped.',
        'dead-letter',
      ),
      CLOUDMOM_REPLY_ALLOW_LIST: note(
        s.replies
          ? 'Replies go only to these (by name or URL), never where a message says.'
          : 'One-way: no reply address is allowed (and the role may send none).',
        replyAllowList(topology, s),
      ),
    },
    events: [
      {
        sqs: {
          arn: getAtt(`${id}Queue`, 'Arn'),
          batchSize: s.batchSize,
          maximumBatchingWindow: fifo ? undefined : window,
          functionResponseType: 'ReportBatchItemFailures',
          maximumConcurrency: own.maximumConcurrency ?? Math.max(2, s.concurrency),
        },
      },
    ],
  };
}

/** What a service may reply to: the reply queue (name and URL) and the topology's extras. */
function replyAllowList(topology: Topology, s: ServiceSpec): YamlValue {
  if (!s.replies) return '';
  const own = topology.replies ? [getAtt('RepliesQueue', 'QueueName'), ref('RepliesQueue')] : [];
  const all: YamlValue[] = [...own, ...topology.replyAllowList];
  return own.length === 0 ? topology.replyAllowList.join(',') : { 'Fn::Join': [',', all] };
}

/** The ARN of an extra reply destination (a name, a queue URL or an ARN; `*` = prefix). */
function extraReplyArn(entry: string): YamlValue {
  if (entry.startsWith('arn:')) return entry;
  const name = /^https?:\/\//.test(entry) ? (entry.split('/').pop() ?? entry) : entry;
  return { 'Fn::Sub': `arn:\${AWS::Partition}:sqs:\${AWS::Region}:\${AWS::AccountId}:${name}` };
}

function queue(name: string, properties: YamlMap): YamlMap {
  return {
    Type: 'AWS::SQS::Queue',
    Properties: { QueueName: name, SqsManagedSseEnabled: true, ...properties },
  };
}

function resources(topology: Topology, names: AwsNames, o: Resolved, fifo: boolean): YamlMap {
  const out: Record<string, YamlValue> = {
    EventsTopic: note(['-------------------------------------------------------------- topic'], {
      Type: 'AWS::SNS::Topic',
      Properties: {
        TopicName: names.topic,
        FifoTopic: fifo ? true : undefined,
        KmsMasterKeyId: note(
          'SSE with the AWS-managed SNS key (publishers need kms:GenerateDataKey on it).',
          'alias/aws/sns',
        ),
      },
    }),
  };
  for (const s of topology.services)
    Object.assign(out, serviceResources(topology, s, names, fifo ? 0 : o.batchingWindowSeconds));
  if (topology.replies)
    out.RepliesQueue = note(
      [null, '-------------------------------------------------------------- replies'],
      queue(names.replies!, {
        MessageRetentionPeriod: note(
          `Replies nobody collects expire after ${duration(topology.replies.retentionSeconds)}.`,
          topology.replies.retentionSeconds,
        ),
      }),
    );
  return out;
}

function serviceResources(
  topology: Topology,
  s: ServiceSpec,
  names: AwsNames,
  window: number,
): YamlMap {
  const id = logicalId(s.name);
  const n = names.services[s.name]!;
  const fifo = s.ordered ? { FifoQueue: true } : {};
  const replyTo: YamlValue[] = s.replies
    ? [
        ...(topology.replies ? [getAtt('RepliesQueue', 'Arn')] : []),
        ...topology.replyAllowList.map(extraReplyArn),
      ]
    : [];
  return {
    [`${id}Queue`]: note(
      [
        null,
        `-------------------------------------------------------------- ${s.name}`,
        ...(s.description ? [s.description] : []),
      ],
      queue(n.queue, {
        ...fifo,
        MessageRetentionPeriod: topology.retentionSeconds,
        VisibilityTimeout: note(
          s.lockSeconds !== undefined
            ? "The service's lockSeconds."
            : `AWS: ≥ 6 × function timeout + batching window = ${6 * s.timeoutSeconds + window}, rounded up to half a minute.`,
          visibilityTimeout(s, window),
        ),
        RedrivePolicy: {
          deadLetterTargetArn: getAtt(`${id}DeadLetterQueue`, 'Arn'),
          maxReceiveCount: s.maxDeliveries,
        },
      }),
    ),
    [`${id}DeadLetterQueue`]: queue(n.deadLetter, {
      ...fifo,
      MessageRetentionPeriod: note(
        `Dead letters are kept ${duration(s.deadLetterRetentionSeconds)}.`,
        s.deadLetterRetentionSeconds,
      ),
    }),
    [`${id}Subscription`]: {
      Type: 'AWS::SNS::Subscription',
      Properties: {
        TopicArn: ref('EventsTopic'),
        Protocol: 'sqs',
        Endpoint: getAtt(`${id}Queue`, 'Arn'),
        RawMessageDelivery: note(
          'The SQS message keeps the SNS message attributes as its own (no JSON envelope).',
          true,
        ),
        FilterPolicyScope: 'MessageAttributes',
        FilterPolicy: { target: s.targets.map((t) => t.name) },
      },
    },
    [`${id}QueuePolicy`]: {
      Type: 'AWS::SQS::QueuePolicy',
      Properties: {
        Queues: [ref(`${id}Queue`)],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'EventsTopicDelivers',
              Effect: 'Allow',
              Principal: { Service: 'sns.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: getAtt(`${id}Queue`, 'Arn'),
              Condition: { ArnEquals: { 'aws:SourceArn': ref('EventsTopic') } },
            },
          ],
        },
      },
    },
    [`${id}Role`]: {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'lambda.amazonaws.com' },
              Action: 'sts:AssumeRole',
            },
          ],
        },
        Policies: [
          {
            PolicyName: s.name,
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: [
                note("What the event source mapping does on the function's behalf.", {
                  Effect: 'Allow',
                  Action: [
                    'sqs:ReceiveMessage',
                    'sqs:DeleteMessage',
                    'sqs:ChangeMessageVisibility',
                    'sqs:GetQueueAttributes',
                  ],
                  Resource: getAtt(`${id}Queue`, 'Arn'),
                }),
                note(
                  s.replies
                    ? 'Dead letters with their reason, and replies.'
                    : 'Dead letters with their reason.',
                  {
                    Effect: 'Allow',
                    Action: ['sqs:SendMessage', 'sqs:GetQueueUrl'],
                    Resource: [getAtt(`${id}DeadLetterQueue`, 'Arn'), ...replyTo],
                  },
                ),
                note('Its own log group only (the ARN ends in ":*": the log streams in it).', {
                  Effect: 'Allow',
                  Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
                  Resource: getAtt(`${id}LogGroup`, 'Arn'),
                }),
              ],
            },
          },
        ],
      },
    },
  };
}

function outputs(topology: Topology): YamlMap {
  const out: Record<string, YamlValue> = { EventsTopicArn: { Value: ref('EventsTopic') } };
  for (const s of topology.services) {
    const id = logicalId(s.name);
    out[`${id}QueueUrl`] = { Value: ref(`${id}Queue`) };
    out[`${id}DeadLetterQueueUrl`] = { Value: ref(`${id}DeadLetterQueue`) };
  }
  if (topology.replies) out.RepliesQueueUrl = { Value: ref('RepliesQueue') };
  return out;
}

function duration(seconds: number): string {
  const units: [number, string][] = [
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units)
    if (seconds % size === 0) {
      const count = seconds / size;
      return count === 1 ? `one ${unit}` : `${count} ${unit}s`;
    }
  return `${seconds} s`;
}
