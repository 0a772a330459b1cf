/**
 * Test helpers on the real Kafka: fresh topics, reading a topic from its start without a
 * consumer group (plain fetches), raw produce, and brokers with test timings.
 */
import {
  Admin,
  Consumer,
  IS_CONTROL,
  ListOffsetTimestamps,
  type Message,
  Producer,
} from '@platformatic/kafka';
import type { BrokerOptions } from 'cloudmom';
import {
  KafkaBroker,
  type KafkaBrokerOptions,
  type KafkaEvent,
  type KafkaEventRecord,
} from 'cloudmom/kafka';
import { inject } from 'vitest';

export const uid = () => Math.random().toString(36).slice(2, 10);

export function brokersAddress(): string[] {
  return inject('kafkaBrokers').split(',');
}

/** Group timings that keep joins and rebalances short on the test server. */
export const FAST_GROUP = {
  sessionTimeoutMs: 3000,
  heartbeatIntervalMs: 250,
  rebalanceTimeoutMs: 3000,
} as const;

/** A record read back: the native shape plus decoded headers. */
export interface ReadRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
  readonly rawHeaders: [Buffer | null, Buffer | null][];
  readonly timestamp: bigint;
}

/** Admin, a raw producer, and a group-less reader, on one Kafka. */
export class Kafka {
  readonly brokers: string[];
  readonly admin: Admin;
  readonly producer: Producer;
  readonly reader: Consumer;

  constructor(brokers = brokersAddress()) {
    this.brokers = brokers;
    this.admin = new Admin({ clientId: 'cm-test-admin', bootstrapBrokers: brokers });
    this.producer = new Producer({ clientId: 'cm-test-raw', bootstrapBrokers: brokers });
    this.reader = new Consumer({
      clientId: 'cm-test-reader',
      bootstrapBrokers: brokers,
      groupId: 'cm-test-reader-unused',
    });
  }

  /** Creates topics and waits until every partition has a leader (a first produce would wait otherwise). */
  async createTopics(topics: string[], partitions = 1): Promise<void> {
    await this.admin.createTopics({ topics, partitions, replicas: 1 });
    for (let i = 0; i < 100; i++) {
      const md = await this.admin.metadata({ topics, forceUpdate: true }).catch(() => undefined);
      const ready = topics.every((t) => {
        const info = md?.topics.get(t);
        return (
          info && info.partitionsCount === partitions && info.partitions.every((p) => p.leader >= 0)
        );
      });
      if (ready) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async deleteTopics(topics: string[]): Promise<void> {
    await this.admin.deleteTopics({ topics }).catch(() => undefined);
  }

  /** Every record of a topic so far (all partitions, from the start). */
  async read(topic: string): Promise<ReadRecord[]> {
    const md = await this.reader.metadata({ topics: [topic], forceUpdate: true });
    const t = md.topics.get(topic);
    if (!t) return [];
    const ends = (
      await this.reader.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.LATEST })
    ).get(topic)!;
    const out: ReadRecord[] = [];
    for (let p = 0; p < t.partitionsCount; p++) {
      let position = 0n;
      const end = ends[p] ?? 0n;
      while (position < end) {
        const response = await this.reader.fetch({
          node: t.partitions[p]!.leader,
          topics: [
            {
              topicId: t.id,
              partitions: [
                {
                  partition: p,
                  fetchOffset: position,
                  partitionMaxBytes: 4 * 1024 * 1024,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                },
              ],
            },
          ],
          maxWaitTime: 100,
          minBytes: 1,
          maxBytes: 16 * 1024 * 1024,
        });
        const part = response.responses[0]?.partitions.find((x) => x.partitionIndex === p);
        for (const batch of part?.records ?? []) {
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
          if (!(batch.attributes & IS_CONTROL))
            for (const r of batch.records) {
              const offset = batch.firstOffset + BigInt(r.offsetDelta);
              if (offset < position) continue;
              const headers: Record<string, string> = {};
              for (const [k, v] of r.headers)
                if (k) headers[k.toString('utf8')] = v ? v.toString('utf8') : '';
              out.push({
                topic,
                partition: p,
                offset,
                key: r.key,
                value: r.value,
                headers,
                rawHeaders: r.headers,
                timestamp: batch.firstTimestamp + r.timestampDelta,
              });
            }
          position = last + 1n;
        }
      }
    }
    return out;
  }

  /** Produces one raw record (headers as given). */
  async produce(
    topic: string,
    record: {
      value: Uint8Array;
      key?: string;
      headers?: Record<string, string | Buffer>;
      partition?: number;
    },
  ): Promise<void> {
    const headers = new Map<Buffer, Buffer>();
    for (const [k, v] of Object.entries(record.headers ?? {}))
      headers.set(Buffer.from(k), Buffer.isBuffer(v) ? v : Buffer.from(v));
    await this.producer.send({
      messages: [
        {
          topic,
          value: Buffer.from(record.value),
          ...(record.key !== undefined ? { key: Buffer.from(record.key) } : {}),
          ...(record.partition !== undefined ? { partition: record.partition } : {}),
          headers,
        },
      ],
    });
  }

  /** The committed offsets of a group, per partition. */
  async committed(groupId: string, topic: string, partitions = 1): Promise<bigint[]> {
    const consumer = new Consumer({
      clientId: 'cm-test-offsets',
      bootstrapBrokers: this.brokers,
      groupId,
    });
    try {
      const m = await consumer.listCommittedOffsets({
        topics: [{ topic, partitions: Array.from({ length: partitions }, (_, i) => i) }],
      });
      return m.get(topic) ?? [];
    } finally {
      await consumer.close(true);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.admin.close(), this.producer.close(), this.reader.close(true)]);
  }
}

/** A fresh topology: topic (+ dead-letter and reply topics), group, and brokers on it. */
export interface Topology {
  readonly topic: string;
  /** A topic that is never created (sends to it fail). */
  readonly missingTopic: string;
  readonly deadLetterTopic: string;
  readonly replyTopic: string;
  readonly groupId: string;
  broker(options?: BrokerOptions & Partial<KafkaBrokerOptions>): KafkaBroker;
  cleanup(): Promise<void>;
}

export async function topology(kafka: Kafka, partitions = 3): Promise<Topology> {
  const base = `cm-${uid()}`;
  const topic = base;
  const deadLetterTopic = `${base}.dlt`;
  const replyTopic = `${base}.replies`;
  await kafka.createTopics([topic, replyTopic], partitions);
  await kafka.createTopics([deadLetterTopic], 1);
  const groupId = `${base}-group`;
  const missingTopic = `${base}.missing`;
  return {
    topic,
    missingTopic,
    deadLetterTopic,
    replyTopic,
    groupId,
    broker: (options = {}) =>
      new KafkaBroker({
        brokers: kafka.brokers,
        topic,
        groupId,
        replyTopic,
        group: FAST_GROUP,
        maxWaitMs: 200,
        // a send to a missing topic fails after ~1.5 s instead of ~14 s
        connection: { retries: 6, retryDelay: 250 },
        ...options,
      }),
    cleanup: () => kafka.deleteTopics([topic, deadLetterTopic, replyTopic]),
  };
}

/** Java bytes are signed: Lambda's JSON may carry -128…127. */
export const signed = (b: Buffer) => [...b].map((x) => (x > 127 ? x - 256 : x));

/** A Lambda event (MSK shape) from records read back from Kafka. */
export function toKafkaEvent(
  records: ReadRecord[],
  bootstrap: readonly string[],
  eventSource = 'aws:kafka',
): KafkaEvent {
  const out: Record<string, KafkaEventRecord[]> = {};
  for (const r of records) {
    const tp = `${r.topic}-${r.partition}`;
    const list = out[tp] ?? [];
    out[tp] = list;
    list.push({
      topic: r.topic,
      partition: r.partition,
      offset: Number(r.offset),
      timestamp: Number(r.timestamp),
      timestampType: 'CREATE_TIME',
      ...(r.key ? { key: r.key.toString('base64') } : {}),
      value: r.value ? r.value.toString('base64') : null,
      headers: r.rawHeaders.map(([k, v]) => ({
        [k!.toString('utf8')]: signed(v ?? Buffer.alloc(0)),
      })),
    });
  }
  return {
    eventSource,
    ...(eventSource === 'aws:kafka'
      ? {
          eventSourceArn:
            'arn:aws:kafka:us-east-1:123456789012:cluster/demo/751d2973-a626-431c-9d4e-d7975eb44dd7-2',
        }
      : {}),
    bootstrapServers: bootstrap.join(','),
    records: out,
  };
}

export type { Message };
