/**
 * The capability matrix (`docs/platforms.md`), generated from the code: every row is read from
 * a broker's own `capabilities` (constructed offline: no network, no credentials), so the page
 * cannot disagree with what the brokers declare. `test/unit/platforms.test.ts` fails when the
 * committed page differs; `npm run docs:platforms` rewrites it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Broker, Capabilities } from '../src/index.ts';

/** Where each broker class is exported (the package's subpaths, from source). */
const MODULES = {
  cloudmom: '../src/index.ts',
  aws: '../adapters/aws/index.ts',
  azure: '../adapters/azure/index.ts',
  gcp: '../adapters/gcp/index.ts',
  cloudflare: '../adapters/cloudflare/index.ts',
  amqp: '../adapters/amqp/index.ts',
  kafka: '../adapters/kafka/index.ts',
} as const;

/** One broker configuration: built offline from its options; what the code does not declare. */
interface Row {
  readonly broker: string;
  readonly module: keyof typeof MODULES;
  readonly className: string;
  readonly options: object;
  readonly entrypoints: string;
  readonly iac: string;
  readonly orderingNote?: string;
}

const SERVICE_BUS = {
  connectionString:
    'Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=x',
  queue: 'orders',
};

const ROWS: Row[] = [
  {
    broker: '`MemoryBroker` (`cloudmom`)',
    module: 'cloudmom',
    className: 'MemoryBroker',
    options: {},
    entrypoints: '—',
    iac: '—',
  },
  {
    broker: '`SqsBroker`, standard queue (`cloudmom/aws`)',
    module: 'aws',
    className: 'SqsBroker',
    options: { queue: 'orders' },
    entrypoints: '`lambdaHandler` (SQS events, partial batch response)',
    iac: '`serverless.yml`',
    orderingNote: 'standard queues do not order',
  },
  {
    broker: '`SqsBroker`, FIFO queue',
    module: 'aws',
    className: 'SqsBroker',
    options: { queue: 'orders.fifo' },
    entrypoints: '`lambdaHandler` (groups in order)',
    iac: '`serverless.yml`',
  },
  {
    broker: '`SnsBroker` (`cloudmom/aws`)',
    module: 'aws',
    className: 'SnsBroker',
    options: { topic: 'arn:aws:sns:us-east-1:123456789012:events' },
    entrypoints: '`lambdaHandler` (SNS events)',
    iac: '`serverless.yml`',
    orderingNote: 'standard topics do not order',
  },
  {
    broker: '`ServiceBusBroker`, queue (`cloudmom/azure`)',
    module: 'azure',
    className: 'ServiceBusBroker',
    options: SERVICE_BUS,
    entrypoints: '`azureFunctionHandler` (Functions v4 trigger, plain or SDK binding)',
    iac: '`infra/azure/main.bicep`',
    orderingNote: 'needs `sessions: true`',
  },
  {
    broker: '`ServiceBusBroker`, sessions',
    module: 'azure',
    className: 'ServiceBusBroker',
    options: { ...SERVICE_BUS, sessions: true },
    entrypoints: '`azureFunctionHandler`',
    iac: '`infra/azure/main.bicep`',
  },
  {
    broker: '`PubSubBroker` (`cloudmom/gcp`)',
    module: 'gcp',
    className: 'PubSubBroker',
    options: { projectId: 'p', topic: 'events', replyTopic: 'replies' },
    entrypoints: '`cloudEventHandler`, `pushHandler`',
    iac: '`infra/gcp/*.tf`',
  },
  {
    broker: '`CloudflareQueueBroker` (`cloudmom/cloudflare`)',
    module: 'cloudflare',
    className: 'CloudflareQueueBroker',
    // a producer binding is the runtime's; it is never called here
    options: { queue: { send: async () => undefined, sendBatch: async () => undefined } },
    entrypoints: "`queueHandler` (the Worker's `queue()`)",
    iac: '`infra/cloudflare/wrangler.toml`',
    orderingNote: 'Cloudflare Queues do not order',
  },
  {
    broker: '`AmqpBroker` (`cloudmom/amqp`)',
    module: 'amqp',
    className: 'AmqpBroker',
    options: {},
    entrypoints: '`rmqHandler` (Amazon MQ Lambda events)',
    iac: '`infra/amqp/definitions.json`',
    orderingNote: 'competing consumers with prefetch keep no order',
  },
  {
    broker: '`KafkaBroker` (`cloudmom/kafka`)',
    module: 'kafka',
    className: 'KafkaBroker',
    options: { brokers: ['127.0.0.1:9092'] },
    entrypoints: '`kafkaHandler` (MSK / self-managed Kafka Lambda events)',
    iac: '`infra/kafka/topics.json`',
  },
];

/** Builds a row's broker offline (constructors open no connection). */
async function load(row: Row): Promise<Broker> {
  const exports = (await import(MODULES[row.module])) as Record<
    string,
    new (
      options: object,
    ) => Broker
  >;
  const BrokerClass = exports[row.className];
  if (!BrokerClass) throw new Error(`${MODULES[row.module]} exports no ${row.className}`);
  return new BrokerClass({ ...row.options, logger: false });
}

const kb = (n: number): string => {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1_000_000 === 0) return `${n / 1_000_000} MB`;
  if (n % 1000 === 0) return `${n / 1000} KB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n.toLocaleString('en-US')} B`;
};

function cells(c: Capabilities, row: Row): string[] {
  return [
    row.broker,
    c.ordering ? 'per group key' : `no (${row.orderingNote ?? 'not offered'})`,
    c.maxDelaySeconds > 0 ? `up to ${c.maxDelaySeconds.toLocaleString('en-US')} s` : 'no',
    kb(c.maxMessageBytes),
    `${c.maxBatchMessages} / ${kb(c.maxBatchBytes)}`,
    c.deadLetter === 'native' ? 'native (with reason)' : 'copy (with reason)',
    c.nackDelay ? 'yes' : `no${c.retryHoldMs ? ` (held ≤ ${c.retryHoldMs} ms)` : ''}`,
    c.request ? 'yes' : 'no',
    row.entrypoints,
    row.iac,
  ];
}

/** The page, from the brokers' capabilities. */
export async function renderPlatforms(): Promise<string> {
  const head = [
    'broker',
    'ordering',
    'delay',
    'message limit',
    'batch (messages / bytes)',
    'dead letters',
    'delayed retry',
    '`request()`',
    'entrypoints',
    'IaC',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of ROWS) {
    const broker = await load(row);
    lines.push(`| ${cells(broker.capabilities, row).join(' | ')} |`);
    await broker.stop().catch(() => undefined);
  }
  return `# What each platform can do

<!-- Generated by \`npm run docs:platforms\` (scripts/platforms.ts) from each broker's declared
capabilities; test/unit/platforms.test.ts fails when this page and the code disagree. -->

Every broker passes the same conformance suite (\`test/conformance/\`); a case the platform
cannot support is skipped with its reason, and those reasons are the "no" cells below.

${lines.join('\n')}

- **ordering**: messages with the same \`groupKey\` are handled one at a time, in order, also
  after a failure (the failed one comes back first).
- **delay**: \`publish(..., { delaySeconds })\`; "no" refuses a delay with \`InvalidMessageError\`.
- **message limit**: measured on the platform's wire (body and attributes, or the envelope).
- **dead letters**: *native* settles into the platform's dead-letter sub-queue with the reason;
  *copy* sends a copy with \`dead_letter_reason\` / \`dead_letter_description\` to the
  dead-letter destination, then acknowledges the original.
- **delayed retry**: a failed message comes back after the retry backoff; where the platform
  cannot delay a redelivery, the core holds it briefly before giving it back.
- **\`request()\`**: RPC over the platform, replies to a per-instance address.
`;
}

if (import.meta.main) {
  const page = await renderPlatforms();
  writeFileSync(join(import.meta.dirname, '..', 'docs', 'platforms.md'), page);
  console.log('wrote docs/platforms.md');
}
