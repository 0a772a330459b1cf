/**
 * Profiling driver for the publish paths:
 * `node --conditions=source --cpu-prof --cpu-prof-dir=/tmp/prof/x bench/profile/publish.ts <sqs|sqs-producer|pubsub|pubsub-raw|sb|sb-raw>`.
 * SQS against moto (its own process, so the profile is the client's), Pub/Sub against pstest,
 * Service Bus against the in-repo peer (in this process: its frames show too).
 */
import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Producer } from 'sqs-producer';
import { SqsBroker } from '../../adapters/aws/index.ts';
import { awsClientConfig, startMoto } from '../../test/emulators/aws/moto.ts';
import { rawServiceBusSend } from '../anchors.ts';

const mode = process.argv[2] ?? 'sqs';
const N = Number(process.env.N ?? 20_000);
const body = (i: number) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] });
const attrs = {
  target: { DataType: 'String', StringValue: 'orders' },
  content_type: { DataType: 'String', StringValue: 'application/json' },
};

async function windows(publish: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < N; i += 1000)
    await Promise.all(Array.from({ length: Math.min(1000, N - i) }, (_, j) => publish(i + j)));
}

const t0 = performance.now();
if (mode.startsWith('sqs')) {
  // "-faux" modes: fauxqs in this process (its frames show in the profile), else moto
  const faux = mode.endsWith('-faux')
    ? await (await import('fauxqs')).startFauxqs({ port: 0, host: '127.0.0.1', logger: false })
    : undefined;
  const moto = faux ? undefined : await startMoto();
  const sqs = new SQSClient(
    awsClientConfig(faux ? `http://127.0.0.1:${faux.port}` : moto!.endpoint),
  );
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: `prof-${Date.now()}` })))
    .QueueUrl!;
  const start = performance.now();
  if (mode.startsWith('sqs-producer')) {
    const producer = Producer.create({ queueUrl: url, sqs, batchSize: 10 });
    for (let i = 0; i < N; i += 1000)
      await producer.send(
        Array.from({ length: 1000 }, (_, j) => ({
          id: String(j),
          body: JSON.stringify(body(i + j)),
          messageAttributes: attrs,
        })),
      );
  } else {
    const broker = new SqsBroker({ queue: url, client: sqs, logger: false });
    await windows((i) => broker.publish(body(i), 'orders'));
    await broker.stop();
  }
  console.log(mode, Math.round(N / ((performance.now() - start) / 1000)), 'msg/s');
  sqs.destroy();
  await moto?.stop();
  await faux?.stop();
} else if (mode.startsWith('pubsub')) {
  process.env.METADATA_SERVER_DETECTION = 'none';
  const { PubSub } = await import('@google-cloud/pubsub');
  const { PubSubBroker } = await import('../../adapters/gcp/index.ts');
  const { startPstest } = await import('../../test/emulators/gcp/pstest.ts');
  const peer = await startPstest();
  const client = new PubSub({ projectId: 'prof', apiEndpoint: peer.endpoint });
  const topic = `prof-${Date.now()}`;
  await client.createTopic(topic);
  const start = performance.now();
  if (mode === 'pubsub') {
    const broker = new PubSubBroker({
      client,
      topic,
      projectId: 'prof',
      logger: false,
      ...(process.env.BATCH ? { batch: { maxMessages: Number(process.env.BATCH) } } : {}),
    });
    await windows((i) => broker.publish(body(i), 'orders'));
    await broker.stop();
  } else {
    const t = client.topic(topic);
    await windows((i) =>
      t.publishMessage({
        data: Buffer.from(JSON.stringify(body(i))),
        attributes: { target: 'orders', content_type: 'application/json' },
      }),
    );
  }
  console.log(mode, Math.round(N / ((performance.now() - start) / 1000)), 'msg/s');
  await client.close();
  await peer.stop();
} else {
  const { ServiceBusClient } = await import('@azure/service-bus');
  const { ServiceBusBroker } = await import('../../adapters/azure/index.ts');
  const { startServiceBus } = await import('../../test/emulators/azure/setup.ts');
  const sb = await startServiceBus();
  const client = new ServiceBusClient(sb.connectionString);
  const queue = `prof-${randomUUID().slice(0, 8)}`;
  const start = performance.now();
  if (mode === 'sb') {
    const broker = new ServiceBusBroker({ client, queue, logger: false });
    await windows((i) => broker.publish(body(i), 'orders'));
    await broker.stop();
  } else {
    const sender = client.createSender(queue);
    for (let i = 0; i < N; i += 1000)
      await rawServiceBusSend(sender, 1000, (j) => body(i + j), { subject: 'orders' });
    await sender.close();
  }
  console.log(mode, Math.round(N / ((performance.now() - start) / 1000)), 'msg/s');
  await client.close();
  await sb.stop();
}
process.stderr.write(`total ${Math.round(performance.now() - t0)} ms\n`);
