/**
 * Applies `topics.json` (generated from the topology by `generateKafka` in `cloudmom/infra`:
 * `npm run infra`) to a Kafka cluster with the admin client: creates missing topics,
 * adds partitions where the file asks for more (Kafka cannot remove any), and sets each
 * topic's configs. Idempotent. `replicationFactor` and `min.insync.replicas` are capped at the
 * cluster's broker count (a one-broker test cluster takes the file unchanged otherwise).
 *
 * ```sh
 * KAFKA_BROKERS=b-1.example:9096 KAFKA_SASL_MECHANISM=SCRAM-SHA-512 KAFKA_USERNAME=… KAFKA_PASSWORD=… KAFKA_TLS=1 \
 *   npx node --conditions=source infra/kafka/apply.ts [topics.json]
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Admin } from '@platformatic/kafka';

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs?: Readonly<Record<string, string>>;
}

export interface TopicsFile {
  readonly topics: readonly TopicSpec[];
  /** One consumer group per service (documentation: Kafka creates groups on first join). */
  readonly consumerGroups?: readonly { readonly groupId: string; readonly service: string }[];
  /** Each service principal's ACLs, for clusters with an authorizer (not applied here). */
  readonly acls?: readonly unknown[];
}

/** The topics file next to this script. */
export function readTopics(
  file = join(dirname(fileURLToPath(import.meta.url)), 'topics.json'),
): TopicsFile {
  const spec = JSON.parse(readFileSync(file, 'utf8')) as TopicsFile;
  for (const t of spec.topics) {
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(t.name)) throw new Error(`bad topic name ${t.name}`);
    if (!Number.isInteger(t.partitions) || t.partitions < 1)
      throw new Error(`${t.name}: partitions`);
    if (!Number.isInteger(t.replicationFactor) || t.replicationFactor < 1)
      throw new Error(`${t.name}: replicationFactor`);
  }
  return spec;
}

/** What {@link applyTopics} did. */
export interface Applied {
  readonly created: string[];
  readonly grown: string[];
  readonly configured: string[];
}

export async function applyTopics(admin: Admin, spec: TopicsFile): Promise<Applied> {
  const { ConfigResourceTypes, IncrementalAlterConfigOperationTypes } = await import(
    '@platformatic/kafka'
  );
  const md = await admin.metadata({ topics: [], forceUpdate: true });
  const brokers = Math.max(1, md.brokers.size);
  const existing = new Set(await admin.listTopics());
  const applied: Applied = { created: [], grown: [], configured: [] };
  const configsOf = (t: TopicSpec, rf: number): Record<string, string> => {
    const c = { ...t.configs };
    const isr = c['min.insync.replicas'];
    if (isr !== undefined && Number(isr) > rf) c['min.insync.replicas'] = String(rf);
    return c;
  };
  for (const t of spec.topics) {
    const rf = Math.min(t.replicationFactor, brokers);
    const configs = configsOf(t, rf);
    if (!existing.has(t.name)) {
      await admin.createTopics({
        topics: [t.name],
        partitions: t.partitions,
        replicas: rf,
        configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
      });
      applied.created.push(t.name);
      continue;
    }
    const current = (await admin.metadata({ topics: [t.name], forceUpdate: true })).topics.get(
      t.name,
    );
    if (current && current.partitionsCount < t.partitions) {
      await admin.createPartitions({ topics: [{ name: t.name, count: t.partitions }] });
      applied.grown.push(t.name);
    }
    if (Object.keys(configs).length > 0) {
      await admin.incrementalAlterConfigs({
        resources: [
          {
            resourceType: ConfigResourceTypes.TOPIC,
            resourceName: t.name,
            configs: Object.entries(configs).map(([name, value]) => ({
              name,
              configOperation: IncrementalAlterConfigOperationTypes.SET,
              value,
            })),
          },
        ],
      });
      applied.configured.push(t.name);
    }
  }
  return applied;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { Admin } = await import('@platformatic/kafka');
  const env = process.env;
  const brokers = (env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  if (brokers.length === 0) throw new Error('set KAFKA_BROKERS (host:port,…)');
  const admin = new Admin({
    clientId: 'cloudmom-topics',
    bootstrapBrokers: brokers,
    ...(env.KAFKA_TLS ? { tls: {} } : {}),
    ...(env.KAFKA_SASL_MECHANISM
      ? {
          sasl: {
            mechanism: env.KAFKA_SASL_MECHANISM as 'PLAIN',
            username: env.KAFKA_USERNAME ?? '',
            password: env.KAFKA_PASSWORD ?? '',
          },
        }
      : {}),
  });
  try {
    console.log(JSON.stringify(await applyTopics(admin, readTopics(process.argv[2]))));
  } finally {
    await admin.close();
  }
}
