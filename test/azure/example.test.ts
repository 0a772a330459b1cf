/**
 * The example Functions app (examples/azure): it bundles with esbuild for deployment, registers
 * one function per service on the subscription the generated Bicep gives it, and a registered
 * function answers a request end to end through the peer's example topology (the topology's
 * topic, one filtered subscription per service, the session-enabled reply queue).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FunctionOptions } from '@azure/functions';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { build } from 'esbuild';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { bodyBytes } from '../../adapters/azure/wire.ts';
import {
  createBroker,
  type FunctionsApp,
  REPLY_QUEUE,
  registerFunctions,
  servicesOf,
  TOPIC,
} from '../../examples/azure/functions.ts';
import { topology } from '../../examples/topology.ts';
import { azureService, generateAzure } from '../../src/infra/azure.ts';
import { ROOT } from '../emulators/harness.ts';
import { EXAMPLE_CONFIG } from '../emulators/servicebus/config.ts';
import { actionsFor, invocation } from './host.ts';

const connectionString = inject('serviceBusConnectionString');
const client = new ServiceBusClient(connectionString);
const brokers = Object.fromEntries(
  servicesOf({}).map((s) => [s, createBroker(s, { ServiceBusConnection: connectionString })]),
);
afterAll(async () => {
  for (const b of Object.values(brokers)) await b.stop();
  await client.close();
});

type Registered = { name: string; options: Record<string, any> };
function recordingApp(into: Registered[]): FunctionsApp {
  return {
    serviceBusTopic: (name, options) => {
      into.push({ name, options: options as FunctionOptions & Record<string, any> });
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

  it("the peer's example entities are the generated Bicep's (names, filters, delivery count, sessions)", () => {
    const names = topology.names();
    expect(EXAMPLE_CONFIG.queues?.[names.replies!]).toEqual({ requiresSession: true });
    const subs = EXAMPLE_CONFIG.topics?.[names.topic]?.subscriptions ?? {};
    expect(Object.keys(subs).sort()).toEqual(
      topology.services.map((s) => azureService(topology, s.name).subscription).sort(),
    );
    for (const s of topology.services) {
      const az = azureService(topology, s.name);
      const sub = subs[az.subscription]!;
      expect(sub.maxDeliveryCount).toBe(az.maxDeliveryCount);
      expect(sub.requiresSession ?? false).toBe(az.sessions);
      // the correlation rules pass exactly the targets the SQL filter lists, `$Default` replaced
      const rules = Object.entries(sub.rules ?? {});
      expect(rules.map(([, r]) => (r as { subject: string }).subject)).toEqual(
        s.targets.map((t) => t.name),
      );
      expect(rules.map(([n]) => n)).toContain('$Default');
    }
  });

  it('registers one SDK-binding function per service, on the subscription the Bicep creates', () => {
    const registered: Registered[] = [];
    registerFunctions(recordingApp(registered), brokers);
    const bicep = generateAzure(topology, { connection: 'ServiceBusConnection' })[0]!.content;
    const inBicep = [
      ...bicep.matchAll(/subscriptions@[^']+' = \{\s*parent: topic\s*name: '([^']+)'/g),
    ].map((m) => m[1]);
    expect(registered.map((r) => r.options.subscriptionName).sort()).toEqual(inBicep.sort());
    expect(registered.map((r) => r.name).sort()).toEqual(
      topology.services.map((s) => s.name).sort(),
    );
    for (const r of registered) {
      expect(r.options).toMatchObject({
        connection: 'ServiceBusConnection',
        sdkBinding: true,
        topicName: TOPIC,
        isSessionsEnabled: topology.service(r.name).ordered,
      });
      expect(typeof r.options.handler).toBe('function');
      // the app setting CLOUDMOM_SERVICE the Bicep writes for the service's Function App
      expect(bicep).toContain(`{ name: 'CLOUDMOM_SERVICE', value: '${r.name}' }`);
    }
    // An app that runs one service registers that service's function only.
    expect(servicesOf({ CLOUDMOM_SERVICE: 'worker' })).toEqual(['worker']);
    expect(() => servicesOf({ CLOUDMOM_SERVICE: 'nope' })).toThrow(/no service "nope"/);
  });

  it('a registered function answers a request published to the topic; the reply reaches the reply queue', async () => {
    const registered: Registered[] = [];
    registerFunctions(recordingApp(registered), brokers);
    const greeter = registered.find((r) => r.name === 'greeter')!;
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

    const receiver = client.createReceiver(TOPIC, greeter.options.subscriptionName, {
      skipParsingBodyAsJson: true,
    });
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
    await greeter.options.handler(
      { messages: [mine!], actions: actionsFor(receiver, log) },
      invocation([mine!], 'many', greeter.name),
    );
    expect(log).toEqual([`complete ${mine!.messageId}`]);
    await receiver.close();

    // The requester's session of the session-enabled reply queue (as the Bicep makes it).
    const replies = await client.acceptSession(REPLY_QUEUE, `requester-${correlationId}`, {
      skipParsingBodyAsJson: true,
    });
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
    // Into the requester's session of the session-enabled reply queue.
    expect(reply!.sessionId).toBe(`requester-${correlationId}`);
  });

  it("each service's subscription gets its own targets only (the peer's rules, as the Bicep's filters)", async () => {
    const registered: Registered[] = [];
    registerFunctions(recordingApp(registered), brokers);
    const subscriptionOf = (service: string) =>
      registered.find((r) => r.name === service)!.options.subscriptionName as string;
    const correlationId = `route-${randomUUID()}`;
    const sender = client.createSender(TOPIC);
    await sender.sendMessages({ body: Buffer.from('{}'), subject: 'audit', correlationId });
    await sender.close();
    const seen = async (service: string) => {
      const receiver = client.createReceiver(TOPIC, subscriptionOf(service));
      let found = false;
      const deadline = Date.now() + 1500;
      while (!found && Date.now() < deadline)
        for (const m of await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 })) {
          if (m.correlationId === correlationId) {
            found = true;
            await receiver.completeMessage(m);
          } else await receiver.abandonMessage(m);
        }
      await receiver.close();
      return found;
    };
    expect(await seen('worker')).toBe(true);
    expect(await seen('greeter')).toBe(false);
  });
});
