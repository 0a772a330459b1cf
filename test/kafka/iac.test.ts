/**
 * The example app's topics (`infra/kafka/topics.json`, generated from examples/topology.ts)
 * applied to the real Kafka with the admin client: created with their partitions and configs,
 * and applied again idempotently (partitions grown, configs set, nothing recreated); then the
 * greeter service's broker, built from the same topology, runs on them. Topic names get a
 * stage (`cloudmom-examples-iac<id>-…`) so runs and other tests do not collide.
 */
import { ConfigResourceTypes } from '@platformatic/kafka';
import { KafkaBroker } from 'cloudmom/kafka';
import { afterAll, expect, it } from 'vitest';
import { topology } from '../../examples/topology.ts';
import { applyTopics, readTopics, type TopicsFile } from '../../infra/kafka/apply.ts';
import { generateKafka, kafkaBrokerOptions } from '../../src/infra/kafka.ts';
import { FAST_GROUP, Kafka, uid } from './fixture.ts';

const kafka = new Kafka();
afterAll(() => kafka.close());

it('applies topics.json: partitions, retention, per-service dead-letter topics and replies; again idempotently; the greeter runs on them', async () => {
  const stage = `iac${uid()}`;
  const names = topology.names(stage);
  const file = readTopics();
  // the committed file with the stage's names is what the generator gives for the stage
  const staged = (name: string) => name.replace(topology.name, names.prefix);
  const spec: TopicsFile = { topics: file.topics.map((t) => ({ ...t, name: staged(t.name) })) };
  expect(spec.topics).toEqual(
    (JSON.parse(generateKafka(topology, { stage })[0]!.content) as TopicsFile).topics,
  );
  const topics = spec.topics.map((t) => t.name);
  const greeter = names.services.greeter!;
  expect(topics).toEqual([
    names.topic,
    greeter.deadLetter,
    names.services.worker!.deadLetter,
    names.replies,
  ]);
  try {
    const first = await applyTopics(kafka.admin, spec);
    expect(first.created.sort()).toEqual([...topics].sort());

    const md = await kafka.admin.metadata({ topics, forceUpdate: true });
    for (const t of spec.topics)
      expect(md.topics.get(t.name)?.partitionsCount, t.name).toBe(t.partitions);
    const configs = await kafka.admin.describeConfigs({
      resources: topics.map((resourceName) => ({
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName,
      })),
    });
    const get = (topic: string, name: string) =>
      configs.find((c) => c.resourceName === topic)?.configs.find((c) => c.name === name)?.value;
    // retention from the topology: replies 1 h, the app's messages 4 days, dead letters 14 days
    expect(get(names.replies!, 'retention.ms')).toBe('3600000');
    expect(get(names.topic, 'retention.ms')).toBe(String(4 * 86_400_000));
    expect(get(greeter.deadLetter, 'retention.ms')).toBe(String(14 * 86_400_000));
    expect(get(names.topic, 'max.message.bytes')).toBe('1048588');
    // 3 asked, 1 broker here: min.insync.replicas capped so acks=all works
    expect(get(names.replies!, 'min.insync.replicas')).toBe('1');

    const again = await applyTopics(kafka.admin, {
      topics: spec.topics.map((t) =>
        t.name === greeter.deadLetter ? { ...t, partitions: t.partitions + 1 } : t,
      ),
    });
    expect(again.created).toEqual([]);
    expect(again.grown).toEqual([greeter.deadLetter]);
    expect(again.configured.sort()).toEqual([...topics].sort());

    // the greeter's broker, from the topology: its group, its dead-letter topic, the replies
    const options = kafkaBrokerOptions(topology, 'greeter', { stage });
    expect(options.groupId).toBe(greeter.queue);
    const broker = new KafkaBroker({
      brokers: kafka.brokers,
      ...options,
      group: FAST_GROUP,
      logger: false,
      retry: { baseDelayMs: 10, maxDelayMs: 20 },
    });
    broker.add('hello', (_p, b: string) => `Hi ${b}`);
    broker.add('sum', () => {
      throw new Error('to the dead-letter topic');
    });
    await broker.start();
    await broker.publish('for the worker service', 'audit'); // another group's target: discarded
    await broker.publish({ numbers: [1] }, 'sum');
    expect((await broker.request('Ada', 'hello')).body).toBe('Hi Ada');
    for (let i = 0; i < 200 && (await kafka.read(greeter.deadLetter)).length === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    const dead = await kafka.read(greeter.deadLetter);
    expect(dead.map((r) => r.headers.target)).toEqual(['sum']);
    expect(dead[0]!.headers.dead_letter_reason).toBe('handler-failed');
    await broker.stop();
    // the audit record was not dead-lettered by the greeter either
    expect((await kafka.read(greeter.deadLetter)).length).toBe(1);
    // nothing went to the worker's dead-letter topic, and only the failing sum to greeter's
    expect(await kafka.read(names.services.worker!.deadLetter)).toEqual([]);
  } finally {
    await kafka.deleteTopics(topics);
  }
});
