/**
 * Offline validation of infra/azure/main.bicep (generated from examples/topology.ts):
 * - checkov (PyPI) parses the Bicep and runs its Azure policies: no parse error, no failed
 *   check; every skip is written next to the resource with its reason;
 * - structural assertions checkov has no policy for (it has no Bicep checks for Service Bus):
 *   one subscription per service of the topology whose `$Default` rule passes exactly its targets
 *   on the subject, dead-lettering, a max delivery count above the service's maxDeliveries,
 *   sessions for ordered services, the session-enabled reply queue, one Function App per
 *   service whose identity gets Sender/Receiver on single entities only, and no SAS /
 *   connection string anywhere.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { topology } from '../../examples/topology.ts';
import { pyTool, ROOT, run } from '../emulators/harness.ts';

const BICEP = join(ROOT, 'infra/azure/main.bicep');
const source = readFileSync(BICEP, 'utf8');

interface CheckovReport {
  results: {
    passed_checks: { check_id: string; resource: string }[];
    failed_checks: { check_id: string; resource: string; check_name: string }[];
    skipped_checks: {
      check_id: string;
      resource: string;
      check_result?: { suppress_comment?: string };
    }[];
  };
  summary: {
    passed: number;
    failed: number;
    skipped: number;
    parsing_errors: number;
    resource_count: number;
  };
}

describe('infra/azure (Bicep)', () => {
  it('checkov parses it and finds nothing unexplained', { timeout: 600_000 }, () => {
    const bin = pyTool('checkov', ['checkov']);
    // Through the venv's python: the script's #! line names where the venv was created.
    const out = run(
      `${bin}/python3`,
      [
        `${bin}/checkov`,
        ...[
          '-d',
          'infra/azure',
          '--framework',
          'bicep',
          '--skip-download',
          '--compact',
          '-o',
          'json',
        ],
      ],
      'checkov is installed from PyPI into .cache/py-checkov',
      { env: { BC_SKIP_MAPPING: 'TRUE', CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: 'false' } },
    );
    const report = JSON.parse(out.slice(out.indexOf('{'))) as CheckovReport;
    expect(report.summary.parsing_errors).toBe(0);
    expect(report.summary.resource_count).toBeGreaterThanOrEqual(4);
    expect(
      report.results.failed_checks.map((c) => `${c.check_id} ${c.resource}: ${c.check_name}`),
    ).toEqual([]);
    expect(report.summary.passed).toBeGreaterThan(10);
    // Every skip carries a reason in the source (`// checkov:skip=ID: reason`).
    for (const s of report.results.skipped_checks) {
      expect(source).toMatch(new RegExp(`checkov:skip=${s.check_id}: \\S.{10,}`));
    }
  });

  /** The resource blocks of a type, by symbolic name. */
  const blocks = (type: string) =>
    new Map(
      source
        .split(/\nresource /)
        .slice(1)
        .filter((b) => b.split('\n')[0]!.includes(`'${type}@`))
        .map((b) => [b.split(' ')[0]!, b]),
    );
  const subscriptions = blocks('Microsoft.ServiceBus/namespaces/topics/subscriptions');
  const rules = blocks('Microsoft.ServiceBus/namespaces/topics/subscriptions/rules');
  const apps = blocks('Microsoft.Web/sites');
  const assignments = blocks('Microsoft.Authorization/roleAssignments');

  it("routes each service's targets to its own subscription: `$Default` replaced by a filter on the subject", () => {
    expect(subscriptions.size).toBe(topology.services.length);
    const routed: string[] = [];
    for (const s of topology.services) {
      const id = s.name.replace(/-/g, '_');
      const sub = subscriptions.get(`subscription_${id}`)!;
      expect(sub).toContain(`name: '${topology.names().services[s.name]!.queue}'`);
      const rule = rules.get(`rule_${id}`)!;
      expect(rule).toContain(`parent: subscription_${id}`);
      // Replacing the catch-all rule, else every subscription gets every message.
      expect(rule).toMatch(/name: '\$Default'\s*properties: \{\s*filterType: 'SqlFilter'/);
      const expression = rule.match(/sqlExpression: '(.*)'/)![1]!.replace(/\\'/g, "'");
      const listed = expression.match(/^sys\.Label IN \((.*)\)$/)![1]!.split(', ');
      expect(listed).toEqual(s.targets.map((t) => `'${t.name}'`));
      routed.push(...s.targets.map((t) => t.name));
    }
    expect(routed.sort()).toEqual(
      topology
        .targets()
        .map((t) => t.name)
        .sort(),
    );
  });

  it('dead-letters natively: cloudmom first (maxDeliveryCount above maxDeliveries), expiry and filter errors too', () => {
    for (const s of topology.services) {
      const sub = subscriptions.get(`subscription_${s.name.replace(/-/g, '_')}`)!;
      const count = Number(sub.match(/maxDeliveryCount: (\d+)/)![1]);
      expect(count).toBeGreaterThan(s.maxDeliveries);
      expect(sub).toMatch(/deadLetteringOnMessageExpiration: true/);
      expect(sub).toMatch(/deadLetteringOnFilterEvaluationExceptions: true/);
      expect(sub).toContain(`requiresSession: ${s.ordered}`);
      // the lock outlasts a handler (the SDK and the host renew it beyond)
      const lock = sub.match(/lockDuration: 'PT(?:(\d+)M)?(?:(\d+)S)?'/)!;
      expect(Number(lock[1] ?? 0) * 60 + Number(lock[2] ?? 0)).toBeGreaterThanOrEqual(
        s.timeoutSeconds,
      );
    }
    expect(source).toMatch(/name: replyQueueName\s*properties: \{[^}]*requiresSession: true/);
    expect(source).toMatch(
      /name: replyQueueName\s*properties: \{[^}]*defaultMessageTimeToLive: 'PT1H'/,
    );
    // No inbox queue: every message goes through the topic and a service's subscription.
    expect(blocks('Microsoft.ServiceBus/namespaces/queues').size).toBe(1);
  });

  it("grants each service's Function App identity Sender/Receiver on single entities only, and no keys exist", () => {
    // Built-in role ids: Azure Service Bus Data Sender / Data Receiver.
    expect(source).toContain('69a216fc-b8fb-44d8-bc22-1f3c2cd27a39');
    expect(source).toContain('4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0');
    // Not "Azure Service Bus Data Owner", not Contributor/Owner.
    expect(source).not.toContain('090c5cfd-751d-490a-894a-3ce6f1109419');
    expect(source).not.toMatch(
      /8e3af657-a8ff-443c-a75c-2fe8c4bcb635|b24988ac-6180-42a0-ab88-20f7382dd24c/,
    );
    expect(apps.size).toBe(topology.services.length);
    const grants = [...assignments.values()].map((b) => ({
      scope: b.match(/scope: (\w+)/)![1],
      role: b.match(/roleDefinitionId: (\w+)/)![1],
      principal: b.match(/principalId: (\w+)/)![1],
    }));
    // every grant is to a service's app identity or a client parameter, on one entity
    for (const g of grants)
      expect(['topic', 'replyQueue', 'storage', ...subscriptions.keys()]).toContain(g.scope);
    for (const s of topology.services) {
      const id = s.name.replace(/-/g, '_');
      expect(apps.get(`app_${id}`)).toMatch(/identity: \{\s*type: 'SystemAssigned'/);
      expect(apps.get(`app_${id}`)).toContain(`{ name: 'CLOUDMOM_SERVICE', value: '${s.name}' }`);
      const mine = grants
        .filter((g) => g.principal === `app_${id}` && g.scope !== 'storage')
        .map((g) => `${g.role} ${g.scope}`)
        .sort();
      expect(mine).toEqual(
        [
          `serviceBusDataReceiver subscription_${id}`,
          'serviceBusDataSender topic',
          ...(s.replies ? ['serviceBusDataSender replyQueue'] : []),
        ].sort(),
      );
    }
    const clients = grants.filter((g) => g.principal === 'principalId');
    expect(clients.map((g) => `${g.role} ${g.scope}`).sort()).toEqual([
      'serviceBusDataReceiver replyQueue',
      'serviceBusDataSender topic',
    ]);
    expect(source).toMatch(/disableLocalAuth: true/);
    expect(source).toMatch(/minimumTlsVersion: '1\.2'/);
    expect(source).not.toMatch(
      /listKeys|AuthorizationRules|RootManageSharedAccessKey|SharedAccessKey=/i,
    );
    expect(source).toMatch(/ServiceBusConnection__fullyQualifiedNamespace/);
  });
});
