/**
 * The built `cloudmom` bin as a subprocess against the Service Bus peer: the connection string
 * from SERVICEBUS_CONNECTION_STRING (never in the URL, never printed), publish, request (a
 * responder in this process), tail, and `dlq list/show/redrive` of 10,000 messages a failing
 * handler dead-lettered natively ($deadletterqueue), killed midway and resumed, each back with
 * its subject, correlation id, reply address and application properties — without
 * DeadLetterReason / DeadLetterErrorDescription.
 */
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import type { Properties } from 'cloudmom';
import { ServiceBusBroker } from 'cloudmom/azure';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type BuiltCli, buildCli, runCli } from '../cli-bin.ts';

const connectionString = inject('serviceBusConnectionString');
const namespace = /Endpoint=sb:\/\/([^/;]+)/.exec(connectionString)![1]!;
const secret = /SharedAccessKey=([^;]+)/.exec(connectionString)?.[1] ?? 'no-key';
const client = new ServiceBusClient(connectionString);
let cli: BuiltCli;
const cloudmom = (args: string[], o: Parameters<typeof runCli>[2] = {}) =>
  runCli(cli.bin, args, {
    ...o,
    env: { SERVICEBUS_CONNECTION_STRING: connectionString, ...o.env },
  });
const fresh = (prefix: string) => `${prefix}${globalThis.crypto.randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  cli = await buildCli('azure');
  console.log(`cli: built in ${cli.buildMs} ms`);
}, 120_000);

afterAll(async () => {
  cli?.remove();
  await client.close();
});

async function receiveAll(entity: string, n: number, waitMs = 20_000) {
  const r = client.createReceiver(entity, {
    receiveMode: 'receiveAndDelete',
    skipParsingBodyAsJson: true,
  });
  const got: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + waitMs;
  while (got.length < n && Date.now() < deadline)
    got.push(...(await r.receiveMessages(Math.min(500, n - got.length), { maxWaitTimeInMs: 500 })));
  await r.close();
  return got;
}

describe('cloudmom on the Service Bus peer', () => {
  it('asks for the connection string by its variable when it is missing (exit 2)', async () => {
    const r = await runCli(cli.bin, ['publish', `servicebus://${namespace}/q`, 't', '1'], {
      env: { SERVICEBUS_CONNECTION_STRING: '' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/set the environment variable SERVICEBUS_CONNECTION_STRING/);
  });

  it('publishes, tails and requests', async () => {
    const queue = fresh('cli-');
    const url = `servicebus://${namespace}/${queue}`;
    const one = await cloudmom(['publish', url, 'greet', '{"n":1}', '-H', 'tenant=acme', '--json']);
    expect(one.code, one.stderr).toBe(0);
    const [m] = await receiveAll(queue, 1);
    expect(m!.subject).toBe('greet');
    expect(m!.applicationProperties).toMatchObject({ tenant: 'acme' });
    expect(m!.messageId).toBe(JSON.parse(one.stdout).messageId);

    const lines = Array.from({ length: 500 }, (_, i) => JSON.stringify({ i })).join('\n');
    const bulk = await cloudmom(['publish', url, 'bulk', '-', '--lines', '--json'], {
      input: lines,
    });
    expect(JSON.parse(bulk.stdout)).toMatchObject({ published: 500, failed: 0 });
    const t = await cloudmom(['tail', url, '--max', '500', '--json', '--idle', '20']);
    expect(t.code, t.stderr).toBe(0);
    const seen = t.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(seen).toHaveLength(500);
    expect(seen[0]).toMatchObject({ target: 'bulk', contentType: 'application/json' });
    expect(seen[0].body).toBeUndefined();

    const responder = new ServiceBusBroker({ connectionString, queue, logger: false });
    responder.add('greet', (_p, name: string) => `Hi ${name}`);
    await responder.start();
    try {
      const r = await cloudmom(['request', url, 'greet', 'Ada', '--timeout', '15000']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('Hi Ada');
    } finally {
      await responder.stop();
    }
    for (const out of [one, bulk, t]) expect(out.stdout + out.stderr).not.toContain(secret);
  });

  it('redrives 10,000 dead letters with their attributes, resuming after a kill', async () => {
    const N = 10_000;
    // lock2s-: messages in hand when the redrive is killed come back after 2 s
    const queue = fresh('lock2s-cli-');
    const url = `servicebus://${namespace}/${queue}`;
    const t0 = Date.now();
    const writer = new ServiceBusBroker({ connectionString, queue, logger: false });
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        writer.publish({ i }, 'work', {
          correlationId: `c-${i}`,
          replyTo: 'cloudmom-reply-x',
          headers: { tenant: 'acme', n: String(i) },
        }),
      ),
    );
    await writer.stop();
    // a few dead-lettered by a failing handler (the core's native path)...
    const failing = new ServiceBusBroker({
      connectionString,
      queue,
      maxDeliveries: 1,
      concurrency: 5,
      logger: false,
    });
    let failures = 0;
    failing.add('work', () => {
      failures++;
      if (failures >= 20) void failing.stop();
      throw new Error('boom');
    });
    await failing.start();
    await expect.poll(() => failing.stats.deadLettered, { timeout: 20_000 }).toBeGreaterThan(10);
    await failing.stop();
    const real = failing.stats.deadLettered;
    // ...the rest as the core dead-letters them (reason code, description), through the SDK
    const receiver = client.createReceiver(queue, { skipParsingBodyAsJson: true });
    let done = real;
    while (done < N) {
      const batch = await receiver.receiveMessages(500, { maxWaitTimeInMs: 1000 });
      await Promise.all(
        batch.map((m) =>
          receiver.deadLetterMessage(m, {
            deadLetterReason: 'handler-failed',
            deadLetterErrorDescription: 'Error: boom',
          }),
        ),
      );
      done += batch.length;
    }
    await receiver.close();
    console.log(`cli: ${N} dead letters (${real} by a failing handler) in ${Date.now() - t0} ms`);

    const list = await cloudmom(['dlq', 'list', url, '--max', '5', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const listed = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(listed).toHaveLength(5);
    expect(listed[0]).toMatchObject({ target: 'work', reason: 'handler-failed', origin: queue });
    const show = await cloudmom(['dlq', 'show', url, listed[2].messageId, '--json']);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      reason: 'handler-failed',
      description: expect.stringContaining('boom'),
      headers: { tenant: 'acme' },
    });

    let moved = 0;
    const first = await cloudmom(['dlq', 'redrive', url, '--json'], {
      onSpawn: (child) => {
        // kill it once a fifth is back on the queue (peeked, not taken)
        const peeker = client.createReceiver(queue, { receiveMode: 'peekLock' });
        let from: ServiceBusReceivedMessage['sequenceNumber'];
        let busy = false;
        const watch = setInterval(async () => {
          if (busy) return;
          busy = true;
          const got = await peeker.peekMessages(1000, from ? { fromSequenceNumber: from } : {});
          moved += got.length;
          if (got.length > 0) from = got.at(-1)!.sequenceNumber!.add(1);
          busy = false;
          if (moved >= N / 5) {
            clearInterval(watch);
            child.kill('SIGKILL');
          }
        }, 100);
        child.on('close', () => {
          clearInterval(watch);
          void peeker.close();
        });
      },
    });
    expect(first.signal).toBe('SIGKILL');
    console.log(`cli: redrive killed after ${first.ms} ms, ${moved}+ moved`);
    await new Promise((r) => setTimeout(r, 2500));
    const second = await cloudmom(['dlq', 'redrive', url, '--json']);
    expect(second.code, second.stderr).toBe(0);
    const result = JSON.parse(second.stdout);
    expect(result.failed).toBe(0);
    console.log(`cli: resumed redrive moved ${result.moved} in ${result.seconds} s`);
    const leftover = await cloudmom(['dlq', 'list', url, '--json']);
    expect(leftover.stdout.trim()).toBe('');

    const got = new Map<string, Properties>();
    let total = 0;
    const ok = new ServiceBusBroker({ connectionString, queue, concurrency: 200, logger: false });
    ok.add('work', (p) => {
      total++;
      got.set(p.correlationId!, p);
    });
    await ok.start();
    await expect.poll(() => got.size, { timeout: 60_000, interval: 200 }).toBe(N);
    await ok.stop();
    expect(total - N).toBeLessThanOrEqual(400); // re-sent but not completed at the kill
    const p = got.get('c-4321')!;
    expect(p).toMatchObject({ target: 'work', replyTo: 'cloudmom-reply-x' });
    expect(p.headers).toEqual({ tenant: 'acme', n: '4321' });
  }, 115_000);
});
