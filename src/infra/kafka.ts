/**
 * The Kafka generator: a topology → `topics.json`, the file `infra/kafka/apply.ts` applies
 * with the admin client (idempotent: creates missing topics, grows partitions, sets configs).
 *
 * Shape (names from {@link Topology.names}, the same on every platform):
 *
 * - the app topic `<prefix>` — `publish()` sends every target there, the target in the
 *   `target` header; retention = the topology's `retentionSeconds`;
 * - one dead-letter topic per service, `<prefix>-<service>-dead-letter` (the broker's
 *   `deadLetterTopic`; the adapter's default `<topic>.dlt` would mix every service's dead
 *   letters), retention = the service's `deadLetterRetentionSeconds`;
 * - the replies topic `<prefix>-replies` (retention = `replies.retentionSeconds`, short
 *   segments so old replies go soon);
 * - one consumer group per service, `<prefix>-<service>`, listed under `consumerGroups`
 *   (Kafka creates groups on first join; the file records which service owns which), and
 *   the ACLs of each service's principal under `acls` (least privilege, for clusters with an
 *   authorizer: `kafka-acls.sh`, Confluent RBAC, MSK IAM policies built from them).
 *
 * Every group reads the whole app topic, so a service's broker discards the targets of other
 * services instead of dead-lettering them: use {@link kafkaBrokerOptions}. Encryption at
 * rest is the cluster's (MSK and Confluent Cloud encrypt by default; self-managed: the
 * disks'); Kafka has no per-topic setting for it.
 *
 * @example
 * ```ts
 * import { generateKafka } from 'cloudmom/infra';
 * const [file] = generateKafka(topology, { partitions: 12 });
 * JSON.parse(file!.content).topics.map((t: { name: string }) => t.name);
 * ```
 * @module
 */
import { InvalidArgumentError } from '../errors.ts';
import type { RetryOptions } from '../options.ts';
import type { Topology } from '../topology.ts';
import { checkOptionKeys } from '../util.ts';
import { integerOption as int } from './ranges.ts';
import type { GeneratedFile } from './types.ts';

/**
 * Options of {@link generateKafka}.
 *
 * @example
 * ```ts
 * const options: KafkaInfraOptions = { stage: 'prod', partitions: 12, replicationFactor: 3 };
 * ```
 */
export interface KafkaInfraOptions {
  /** Stage of the names (`<name>-<stage>-…`). Default: none. */
  readonly stage?: string;
  /** Partitions of the app topic (the most consumers of a group that can work at once). Default 6. */
  readonly partitions?: number;
  /** Partitions of each dead-letter topic. Default 3. */
  readonly deadLetterPartitions?: number;
  /** Partitions of the replies topic. Default 3. */
  readonly replyPartitions?: number;
  /** Replicas of every topic (`infra/kafka/apply.ts` caps it at the cluster's brokers). Default 3. */
  readonly replicationFactor?: number;
  /** `min.insync.replicas` (the producer writes with `acks=all`); at most `replicationFactor`. Default 2. */
  readonly minInsyncReplicas?: number;
  /** `max.message.bytes` of every topic (the broker's `maxMessageBytes` must fit in it). Default 1,048,588 (Kafka's). */
  readonly maxMessageBytes?: number;
}

const OPTION_KEYS = [
  'stage',
  'partitions',
  'deadLetterPartitions',
  'replyPartitions',
  'replicationFactor',
  'minInsyncReplicas',
  'maxMessageBytes',
] as const satisfies readonly (keyof KafkaInfraOptions)[];

/** One topic of `topics.json`. */
interface Topic {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
}

/** Longest reply-topic segment: old replies are deleted a segment at a time. */
const REPLY_SEGMENT_MS = 600_000;

/**
 * Generates `topics.json` for a topology (see the module for the shape).
 *
 * @example
 * ```ts
 * for (const file of generateKafka(topology, { stage: 'dev' })) console.log(file.path); // topics.json
 * ```
 */
export function generateKafka(
  topology: Topology,
  options: KafkaInfraOptions = {},
): GeneratedFile[] {
  const where = 'generateKafka';
  checkOptionKeys(options, OPTION_KEYS, where);
  const partitions = int(options.partitions, 6, 1, 10_000, `${where}: partitions`);
  const dlPartitions = int(
    options.deadLetterPartitions,
    3,
    1,
    10_000,
    `${where}: deadLetterPartitions`,
  );
  const replyPartitions = int(options.replyPartitions, 3, 1, 10_000, `${where}: replyPartitions`);
  const rf = int(options.replicationFactor, 3, 1, 32, `${where}: replicationFactor`);
  const isr = int(options.minInsyncReplicas, Math.min(2, rf), 1, 32, `${where}: minInsyncReplicas`);
  if (isr > rf)
    throw new InvalidArgumentError(
      `${where}: minInsyncReplicas (${isr}) is above replicationFactor (${rf}): no write with acks=all could succeed; lower minInsyncReplicas or raise replicationFactor`,
    );
  const maxBytes = int(
    options.maxMessageBytes,
    1_048_588,
    1024,
    1_073_741_824,
    `${where}: maxMessageBytes`,
  );
  const n = topology.names(options.stage);
  const base = (retentionMs: number): Record<string, string> => ({
    'cleanup.policy': 'delete',
    'retention.ms': String(retentionMs),
    'min.insync.replicas': String(isr),
    'max.message.bytes': String(maxBytes),
  });
  const topics: Topic[] = [
    {
      name: n.topic,
      partitions,
      replicationFactor: rf,
      configs: base(topology.retentionSeconds * 1000),
    },
  ];
  for (const s of topology.services)
    topics.push({
      name: n.services[s.name]!.deadLetter,
      partitions: dlPartitions,
      replicationFactor: rf,
      configs: base(s.deadLetterRetentionSeconds * 1000),
    });
  if (topology.replies && n.replies) {
    const ms = topology.replies.retentionSeconds * 1000;
    topics.push({
      name: n.replies,
      partitions: replyPartitions,
      replicationFactor: rf,
      configs: { ...base(ms), 'segment.ms': String(Math.min(REPLY_SEGMENT_MS, ms)) },
    });
  }
  const consumerGroups = topology.services.map((s) => ({
    groupId: n.services[s.name]!.queue,
    service: s.name,
    topics: [n.topic],
    targets: s.targets.map((t) => t.name),
    deadLetterTopic: n.services[s.name]!.deadLetter,
    ...(s.ordered && { ordered: true }),
  }));
  const acls = topology.services.map((s) => {
    const own = n.services[s.name]!;
    const allow: { resourceType: string; name: string; operations: string[] }[] = [
      { resourceType: 'topic', name: n.topic, operations: ['Read', 'Write', 'Describe'] },
      { resourceType: 'group', name: own.queue, operations: ['Read', 'Describe'] },
      { resourceType: 'topic', name: own.deadLetter, operations: ['Write', 'Describe'] },
    ];
    if (n.replies)
      allow.push({
        resourceType: 'topic',
        name: n.replies,
        operations: ['Read', 'Write', 'Describe'],
      });
    return { principal: `User:${own.queue}`, service: s.name, allow };
  });
  const file = {
    $comment: `Generated by cloudmom from the topology "${topology.name}"${options.stage ? ` (stage ${options.stage})` : ''}; do not edit: regenerate with \`npm run infra\` (or \`cloudmom infra kafka\`). Applied by infra/kafka/apply.ts (idempotent: creates what is missing, adds partitions, sets configs; replicationFactor and min.insync.replicas are capped at the cluster's broker count). consumerGroups: one group per service on the app topic (each service discards the others' targets). acls: what each service's principal needs, for clusters with an authorizer (not applied by apply.ts). Encryption at rest is the cluster's.`,
    topics,
    consumerGroups,
    acls,
  };
  return [{ path: 'topics.json', content: `${JSON.stringify(file, null, 2)}\n` }];
}

/**
 * What the `KafkaBroker` of one service needs from the topology:
 * the app topic, the service's consumer group and dead-letter topic, the replies topic, the
 * topology's delivery settings and a reply allow-list for Kafka's reply addresses
 * (`<replies topic>#<key>`). `unknownTarget` is `discard`: every group reads the whole app
 * topic, so the other services' targets are not this service's failures.
 *
 * @example
 * ```ts
 * import { KafkaBroker } from 'cloudmom/kafka';
 * import { kafkaBrokerOptions } from 'cloudmom/infra';
 * const broker = new KafkaBroker({ brokers: ['localhost:9092'], ...kafkaBrokerOptions(topology, 'greeter') });
 * ```
 */
export function kafkaBrokerOptions(
  topology: Topology,
  service: string,
  options: { stage?: string } = {},
): {
  topic: string;
  groupId: string;
  deadLetterTopic: string;
  replyTopic?: string;
  maxDeliveries: number;
  retry: RetryOptions;
  concurrency: number;
  unknownTarget: 'discard';
  replyAllowList: string[];
} {
  checkOptionKeys(options, ['stage'], 'kafkaBrokerOptions');
  const s = topology.service(service);
  const n = topology.names(options.stage);
  const own = n.services[s.name]!;
  const base = topology.brokerOptions(s.name, options);
  return {
    topic: n.topic,
    groupId: own.queue,
    deadLetterTopic: own.deadLetter,
    ...(n.replies && { replyTopic: n.replies }),
    maxDeliveries: s.maxDeliveries,
    retry: { ...s.retry },
    concurrency: s.concurrency,
    unknownTarget: 'discard',
    replyAllowList: [
      ...(n.replies ? [`${n.replies}#*`] : []),
      ...((base.replyAllowList ?? []) as string[]),
    ],
  };
}
