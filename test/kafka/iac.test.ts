/**
 * The example app's topics (`infra/kafka/topics.json`) applied to the real Kafka with the
 * admin client: created with their partitions and configs, and applied again idempotently
 * (partitions grown, configs set, nothing recreated). Topic names get a prefix so runs and
 * other tests do not collide.
 */
import { ConfigResourceTypes } from '@platformatic/kafka';
import { KafkaBroker } from 'cloudmom/kafka';
import { afterAll, expect, it } from 'vitest';
import { applyTopics, readTopics, type TopicsFile } from '../../infra/kafka/apply.ts';
import { FAST_GROUP, Kafka, uid } from './fixture.ts';

const kafka = new Kafka();
afterAll(() => kafka.close());

it('applies topics.json: partitions, retention and the dead-letter and reply topics; again idempotently', async () => {
  const prefix = `iac-${uid()}-`;
  const file = readTopics();
  const spec: TopicsFile = { topics: file.topics.map((t) => ({ ...t, name: prefix + t.name })) };
  const names = spec.topics.map((t) => t.name);
  try {
    const first = await applyTopics(kafka.admin, spec);
    expect(first.created.sort()).toEqual([...names].sort());

    const md = await kafka.admin.metadata({ topics: names, forceUpdate: true });
    for (const t of spec.topics)
      expect(md.topics.get(t.name)?.partitionsCount, t.name).toBe(t.partitions);
    const configs = await kafka.admin.describeConfigs({
      resources: names.map((resourceName) => ({
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName,
      })),
    });
    const replies = configs.find((c) => c.resourceName === `${prefix}cloudmom-replies`)!;
    const get = (name: string) => replies.configs.find((c) => c.name === name)?.value;
    expect(get('retention.ms')).toBe('3600000');
    // 3 asked, 1 broker here: min.insync.replicas capped so acks=all works
    expect(get('min.insync.replicas')).toBe('1');

    const again = await applyTopics(kafka.admin, {
      topics: spec.topics.map((t) =>
        t.name.endsWith('.dlt') ? { ...t, partitions: t.partitions + 1 } : t,
      ),
    });
    expect(again.created).toEqual([]);
    expect(again.grown).toEqual([`${prefix}cloudmom.dlt`]);
    expect(again.configured.sort()).toEqual([...names].sort());

    // the broker works on them: publish → handle → dead-letter into <topic>.dlt
    const broker = new KafkaBroker({
      brokers: kafka.brokers,
      topic: `${prefix}cloudmom`,
      replyTopic: `${prefix}cloudmom-replies`,
      groupId: `${prefix}group`,
      group: FAST_GROUP,
      logger: false,
      maxDeliveries: 1,
    });
    broker.add('x', () => {
      throw new Error('to the dead-letter topic');
    });
    broker.add('echo', (_p, b: string) => b);
    await broker.start();
    await broker.publish('x', 'x');
    expect((await broker.request('hi', 'echo')).body).toBe('hi');
    for (let i = 0; i < 100 && (await kafka.read(`${prefix}cloudmom.dlt`)).length === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await kafka.read(`${prefix}cloudmom.dlt`)).length).toBe(1);
    await broker.stop();
  } finally {
    await kafka.deleteTopics(names);
  }
});
