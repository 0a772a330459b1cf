/**
 * The example Functions app (examples/azure): it bundles with esbuild for deployment, registers
 * one function per target subscription plus the inbox, and a registered function answers a
 * request end to end through the peer's example topology (topic `cloudmom`, subscription per
 * target, reply queue `cloudmom-replies`).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FunctionOptions } from '@azure/functions';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { build } from 'esbuild';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { bodyBytes } from '../../adapters/azure/wire.ts';
import { TARGETS } from '../../examples/app.ts';
import {
  createBroker,
  type FunctionsApp,
  REPLY_QUEUE,
  registerFunctions,
  TOPIC,
} from '../../examples/azure/functions.ts';
import { ROOT } from '../emulators/harness.ts';
import { actionsFor, invocation } from './host.ts';

const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString);
const broker = createBroker({ ServiceBusConnection: connectionString });
afterAll(async () => {
  await broker.stop();
  await client.close();
});

type Registered = { kind: 'topic' | 'queue'; name: string; options: Record<string, any> };
function recordingApp(into: Registered[]): FunctionsApp {
  return {
    serviceBusTopic: (name, options) => {
      into.push({ kind: 'topic', name, options: options as FunctionOptions & Record<string, any> });
    },
    serviceBusQueue: (name, options) => {
      into.push({ kind: 'queue', name, options: options as FunctionOptions & Record<string, any> });
    },
  };
}

describe('examples/azure', () => {
  it('bundles for deployment (esbuild, CommonJS for the Functions Node worker)', async () => {
    const out = await build({
      entryPoints: [join(ROOT, 'examples/azure/index.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node22',
      conditions: ['source'],
      external: ['@azure/functions-core'],
      write: false,
      logLevel: 'silent',
    });
    expect(out.errors).toEqual([]);
    expect(out.outputFiles[0]!.text.length).toBeGreaterThan(10_000);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'examples/azure/app/package.json'), 'utf8'));
    expect(pkg.main).toBe('index.js');
    const host = JSON.parse(readFileSync(join(ROOT, 'examples/azure/app/host.json'), 'utf8'));
    expect(host.extensions.serviceBus.autoCompleteMessages).toBe(false); // the SDK binding settles
  });

  it('registers one SDK-binding function per target subscription and one on the inbox queue', () => {
    const registered: Registered[] = [];
    registerFunctions(recordingApp(registered), broker);
    const topics = registered.filter((r) => r.kind === 'topic');
    expect(topics.map((r) => r.options.subscriptionName).sort()).toEqual(
      Object.values(TARGETS).sort(),
    );
    for (const r of registered) {
      expect(r.options).toMatchObject({ connection: 'ServiceBusConnection', sdkBinding: true });
      expect(typeof r.options.handler).toBe('function');
    }
    expect(topics.every((r) => r.options.topicName === TOPIC)).toBe(true);
    expect(registered.filter((r) => r.kind === 'queue')).toHaveLength(1);
  });

  it('a registered function answers a request published to the topic; the reply reaches cloudmom-replies', async () => {
    const registered: Registered[] = [];
    registerFunctions(recordingApp(registered), broker);
    const hello = registered.find((r) => r.options.subscriptionName === 'hello')!;
    const correlationId = `example-${randomUUID()}`;
    const sender = client.createSender(TOPIC);
    await sender.sendMessages({
      body: Buffer.from(JSON.stringify('Hello World!')),
      contentType: 'application/json',
      subject: 'hello',
      correlationId,
      replyTo: REPLY_QUEUE,
      replyToSessionId: `requester-${correlationId}`,
    });
    await sender.close();

    const receiver = client.createReceiver(TOPIC, 'hello', { skipParsingBodyAsJson: true });
    let mine: ServiceBusReceivedMessage | undefined;
    const deadline = Date.now() + 5000;
    while (!mine && Date.now() < deadline) {
      for (const m of await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 })) {
        if (m.correlationId === correlationId) mine = m;
        else await receiver.abandonMessage(m);
      }
    }
    expect(mine).toBeDefined();
    const log: string[] = [];
    await hello.options.handler(
      { messages: [mine!], actions: actionsFor(receiver, log) },
      invocation([mine!], 'many', hello.name),
    );
    expect(log).toEqual([`complete ${mine!.messageId}`]);
    await receiver.close();

    // The requester's session when the reply queue is session-enabled (as the Bicep makes it);
    // a plain receiver when the peer's example config has it as a plain queue.
    const replies = await client
      .acceptSession(REPLY_QUEUE, `requester-${correlationId}`, { skipParsingBodyAsJson: true })
      .catch(() => client.createReceiver(REPLY_QUEUE, { skipParsingBodyAsJson: true }));
    let reply: ServiceBusReceivedMessage | undefined;
    const until = Date.now() + 5000;
    while (!reply && Date.now() < until) {
      for (const m of await replies.receiveMessages(10, { maxWaitTimeInMs: 300 })) {
        if (m.correlationId === correlationId) {
          reply = m;
          await replies.completeMessage(m);
        } else await replies.abandonMessage(m);
      }
    }
    await replies.close();
    expect(reply).toBeDefined();
    expect(Buffer.from(bodyBytes(reply!)).toString()).toBe('Hi there too');
    expect(reply!.subject).toBe('reply');
    // Into the requester's session of the (on Azure, session-enabled) reply queue.
    expect(reply!.sessionId).toBe(`requester-${correlationId}`);
  });
});
