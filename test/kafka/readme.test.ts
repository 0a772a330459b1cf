/**
 * The README's Kafka block, run as written (`node --conditions=source`, a child process)
 * against the test Kafka: the block reads `KAFKA_BROKERS`. The test creates the block's topic
 * `cloudmom`, its `cloudmom.dlt` and the default reply topic when missing (no other test uses
 * `cloudmom`; records of earlier runs on a Kafka kept running are skipped). The block's last
 * line (`export const handler = kafkaHandler(broker)`) is type-checked and built, not invoked:
 * the Lambda entrypoint runs in entrypoint.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runBlock, runnableBlock } from '../../scripts/doc-blocks.ts';
import { brokersAddress, Kafka } from './fixture.ts';

const kafka = new Kafka();
afterAll(() => kafka.close());
const block = runnableBlock('kafka');

describe('README: Kafka', () => {
  it(`README.md:${block.line} runs as written against Kafka: the reply arrives, offsets are committed, it exits`, async () => {
    for (const topic of ['cloudmom', 'cloudmom.dlt', 'cloudmom-replies'])
      await kafka.createTopics([topic]).catch(() => undefined); // may exist (a Kafka kept running)
    const before = (await kafka.read('cloudmom')).length;

    const run = await runBlock(block.path, { KAFKA_BROKERS: brokersAddress().join(',') }, 90_000);
    expect(run.code, `exit ${run.code} ${run.signal ?? ''}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toBe('Hi there too\n');

    // the topic holds the block's publish (keyed by its group key) and its request...
    const records = (await kafka.read('cloudmom')).slice(before);
    expect(records.map((r) => [r.headers.target, r.key?.toString()])).toEqual([
      ['invoice', 'customer-7'],
      ['hello', undefined],
    ]);
    // ...and the group committed past both before it left
    expect(await kafka.committed('billing', 'cloudmom')).toEqual([BigInt(before + 2)]);
  }, 120_000);
});
