/**
 * Topics and subscriptions on the Service Bus peer through `@azure/service-bus`: correlation
 * filters from the peer's config and from the client's rule manager, subscription DLQs.
 */
import type { RuleProperties, ServiceBusClient, ServiceBusRuleManager } from '@azure/service-bus';
import { describe, expect, it } from 'vitest';
import { client, fresh, onPeer } from './helpers.ts';

async function listRules(manager: ServiceBusRuleManager): Promise<RuleProperties[]> {
  const out: RuleProperties[] = [];
  for await (const rule of manager.listRules()) out.push(rule);
  return out;
}

async function drain(sb: ServiceBusClient, topic: string, sub: string): Promise<unknown[]> {
  const receiver = sb.createReceiver(topic, sub, { receiveMode: 'receiveAndDelete' });
  const out: unknown[] = [];
  for (;;) {
    const ms = await receiver.receiveMessages(50, { maxWaitTimeInMs: 400 });
    if (ms.length === 0) break;
    out.push(...ms.map((m) => m.body));
  }
  await receiver.close();
  return out.sort();
}

describe.skipIf(!onPeer)('Service Bus peer: topics', () => {
  const sb = client();

  it("routes by subject with the example topology (its topic, one subscription per service, passing the service's targets)", async () => {
    const topic = 'cloudmom-examples';
    const sender = sb.createSender(topic);
    await sender.sendMessages([
      { body: 'h1', subject: 'hello' },
      { body: 's1', subject: 'sum' },
      { body: 'a1', subject: 'audit' },
      { body: 'h2', subject: 'hello' },
      { body: 'nobody', subject: 'unknown' },
    ]);
    expect(await drain(sb, topic, 'cloudmom-examples-greeter')).toEqual(['h1', 'h2', 's1']);
    expect(await drain(sb, topic, 'cloudmom-examples-worker')).toEqual(['a1']);
  });

  it('rule manager: correlation filters on subject, an application property and correlationId', async () => {
    const topic = fresh('topic-');
    const rules = async (
      sub: string,
      filter: Parameters<ReturnType<ServiceBusClient['createRuleManager']>['createRule']>[1],
    ) => {
      const manager = sb.createRuleManager(topic, sub);
      await manager.deleteRule('$Default');
      await manager.createRule('only', filter);
      return manager;
    };
    const bySubject = await rules('by-subject', { subject: 'orders' });
    await rules('by-prop', { applicationProperties: { target: 'billing' } });
    await rules('by-corr', { correlationId: 'c-7' });
    const all = sb.createRuleManager(topic, 'all'); // keeps $Default (everything)
    expect((await listRules(all)).map((r) => r.name)).toEqual(['$Default']);
    const listed = await listRules(bySubject);
    expect(listed).toHaveLength(1);
    expect(listed[0]!.name).toBe('only');
    expect(listed[0]!.filter).toMatchObject({ subject: 'orders' });

    await sb.createSender(topic).sendMessages([
      { body: 'a', subject: 'orders' },
      { body: 'b', subject: 'invoices', applicationProperties: { target: 'billing' } },
      { body: 'c', correlationId: 'c-7' },
      { body: 'd', subject: 'orders', applicationProperties: { target: 'billing' } },
      { body: 'e', applicationProperties: { target: 'shipping' } },
    ]);
    expect(await drain(sb, topic, 'by-subject')).toEqual(['a', 'd']);
    expect(await drain(sb, topic, 'by-prop')).toEqual(['b', 'd']);
    expect(await drain(sb, topic, 'by-corr')).toEqual(['c']);
    expect(await drain(sb, topic, 'all')).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a filter on several fields needs all of them to match', async () => {
    const topic = fresh('topic-');
    const manager = sb.createRuleManager(topic, 'both');
    await manager.deleteRule('$Default');
    await manager.createRule('both', { subject: 'x', applicationProperties: { n: 1 } });
    await sb.createSender(topic).sendMessages([
      { body: 'only-subject', subject: 'x' },
      { body: 'only-prop', applicationProperties: { n: 1 } },
      { body: 'both', subject: 'x', applicationProperties: { n: 1 } },
    ]);
    expect(await drain(sb, topic, 'both')).toEqual(['both']);
  });

  it('a subscription has its own dead-letter queue', async () => {
    const topic = fresh('topic-');
    // Receivers attach lazily; the rule manager's first call creates the subscription.
    expect(await listRules(sb.createRuleManager(topic, 'workers'))).toHaveLength(1);
    const receiver = sb.createReceiver(topic, 'workers');
    await sb.createSender(topic).sendMessages({ body: 'bad', subject: 'job' });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    await receiver.deadLetterMessage(m!, {
      deadLetterReason: 'Poison',
      deadLetterErrorDescription: 'boom',
    });
    const dlq = sb.createReceiver(topic, 'workers', { subQueueType: 'deadLetter' });
    const [d] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect(d).toMatchObject({
      body: 'bad',
      subject: 'job',
      deadLetterReason: 'Poison',
      deadLetterErrorDescription: 'boom',
      deadLetterSource: `${topic}/Subscriptions/workers`,
    });
    await dlq.completeMessage(d!);
  });

  it('refuses SQL filters it cannot evaluate, instead of ignoring them', async () => {
    const topic = fresh('topic-');
    const manager = sb.createRuleManager(topic, 'sql');
    await expect(manager.createRule('sql', { sqlExpression: "sys.Label = 'x'" })).rejects.toThrow(
      /SQL/,
    );
  });
});
