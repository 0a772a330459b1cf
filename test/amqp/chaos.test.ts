/**
 * Chaos on RabbitMQ (see test/chaos/harness.ts): 10,000 messages through three `AmqpBroker`
 * consumer processes on a quorum queue (with an `x-delivery-limit` backstop above
 * `maxDeliveries`), each SIGKILLed once mid-run and restarted; handlers fail 20% of first
 * deliveries and 1% always. None lost, every poison message dead-lettered with its reason,
 * the queue empty (ready and unacknowledged); redeliveries and duplicates counted.
 *
 * A SIGKILLed consumer's TCP connection closes with the process, so RabbitMQ requeues its
 * unacknowledged deliveries at once (a quorum queue counts each as a delivery).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { AmqpBroker } from 'cloudmom/amqp';
import { afterAll, inject, it } from 'vitest';
import { expectNothingLost } from '../chaos/expect.ts';
import { type DeadLetter, runChaos } from '../chaos/harness.ts';
import { bodyOf, closeTestConnection, testConnection, url } from './fixture.ts';

const TOTAL = Number(process.env.CLOUDMOM_CHAOS_MESSAGES ?? 10_000);
const ctl = inject('amqpCtl');
afterAll(() => closeTestConnection());

/** Messages in a queue, ready and unacknowledged (rabbitmqctl); ready only without it. */
async function depth(queue: string): Promise<number> {
  if (!ctl) {
    const ok = await testConnection().queueDeclare({ queue, passive: true });
    return ok.messageCount;
  }
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      '/usr/lib/rabbitmq/bin/rabbitmqctl',
      ['-n', ctl.node, '-q', 'list_queues', 'name', 'messages', '--no-table-headers'],
      { env: { ...process.env, ...ctl.env }, timeout: 60_000 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  for (const line of out.split('\n')) {
    const [name, messages] = line.trim().split(/\s+/);
    if (name === queue) return Number(messages);
  }
  throw new Error(`queue ${queue} not listed by rabbitmqctl`);
}

it(`AmqpBroker: ${TOTAL.toLocaleString('en')} messages, three consumer processes SIGKILLed and restarted: none lost`, async () => {
  const id = randomUUID().slice(0, 8);
  const exchange = `chaos-x-${id}`;
  const queue = `chaos-q-${id}`;
  const deadLetterQueue = `${queue}.dead-letter`;
  const options = {
    exchange,
    queue,
    queueType: 'quorum' as const,
    deliveryLimit: 20, // RabbitMQ's own backstop only: the core dead-letters at 5
    concurrency: 20,
    maxDeliveries: 5,
    retry: { baseDelayMs: 0, maxDelayMs: 0 },
    connectionOptions: { retryLow: 100, retryHigh: 500 },
  };
  // declares the topology as the consumers do (same arguments), so publishing can start first
  const declarer = new AmqpBroker({ ...options, url: url(), logger: false });
  await declarer.start();
  await declarer.stop();
  const publisher = new AmqpBroker({ exchange, url: url(), logger: false });
  const conn = testConnection();
  try {
    const r = await runChaos({
      platform: 'RabbitMQ quorum queue',
      command: 'npx vitest run --project amqp test/amqp/chaos.test.ts',
      total: TOTAL,
      worker: 'test/amqp/chaos-worker.ts',
      settings: { url: url(), options },
      publish: (n) => publisher.publish({ n }, 'chaos'),
      readDeadLetters: async (): Promise<DeadLetter[]> => {
        const out: DeadLetter[] = [];
        for (;;) {
          const m = await conn.basicGet({ queue: deadLetterQueue, noAck: true });
          if (!m) return out;
          const h = m.headers ?? {};
          out.push({
            n: (bodyOf(m) as { n: number }).n,
            reason: String(h.dead_letter_reason ?? ''),
            description: String(h.dead_letter_description ?? ''),
          });
        }
      },
      queueDepth: () => depth(queue),
    });
    expectNothingLost(r, TOTAL);
  } finally {
    await publisher.stop();
    for (const q of [queue, deadLetterQueue]) await conn.queueDelete({ queue: q }).catch(() => {});
    for (const x of [exchange, `${exchange}.dead-letter`])
      await conn.exchangeDelete({ exchange: x }).catch(() => {});
  }
}, 300_000);
