/**
 * Offline validation of infra/azure/main.bicep:
 * - checkov (PyPI) parses the Bicep and runs its Azure policies: no parse error, no failed
 *   check; every skip is written next to the resource with its reason;
 * - structural assertions checkov has no policy for (it has no Bicep checks for Service Bus):
 *   one subscription per example target with a correlation filter on the subject, dead-lettering
 *   and max delivery count, a reply queue, Sender/Receiver role assignments to the Function App's
 *   managed identity, and no SAS / connection string anywhere.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TARGETS } from '../../examples/app.ts';
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
    const out = run(
      `${bin}/checkov`,
      ['-d', 'infra/azure', '--framework', 'bicep', '--skip-download', '--compact', '-o', 'json'],
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

  it('routes each example target to its own subscription with a correlation filter on the subject', () => {
    const targets = [...source.matchAll(/param targets array = \[([^\]]*)\]/g)][0]?.[1];
    expect(targets).toBeDefined();
    const listed = [...targets!.matchAll(/'([^']+)'/g)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.values(TARGETS).sort());
    expect(source).toMatch(/filterType: 'CorrelationFilter'/);
    expect(source).toMatch(/correlationFilter: \{\s*label: target/);
    // Replacing the catch-all rule, else every subscription gets every message.
    expect(source).toMatch(/name: '\$Default'\s*properties: \{\s*filterType: 'CorrelationFilter'/);
  });

  it('dead-letters: max delivery count and dead-lettering on expiry on every subscription and queue', () => {
    const blocks = source
      .split(/\nresource /)
      .filter((b) => /namespaces\/(queues|topics\/subscriptions)@/.test(b.split('\n')[0]!));
    expect(blocks.length).toBe(3); // subscriptions (a loop), reply queue, inbox queue
    for (const b of blocks) {
      expect(b).toMatch(/maxDeliveryCount: maxDeliveryCount/);
      expect(b).toMatch(/deadLetteringOnMessageExpiration: true/);
    }
    expect(source).toMatch(/name: replyQueueName\s*properties: \{[^}]*requiresSession: true/);
  });

  it('grants the Function App identity data-plane Sender/Receiver roles only, and no keys exist', () => {
    // Built-in role ids: Azure Service Bus Data Sender / Data Receiver.
    expect(source).toContain('69a216fc-b8fb-44d8-bc22-1f3c2cd27a39');
    expect(source).toContain('4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0');
    // Not "Azure Service Bus Data Owner", not Contributor/Owner.
    expect(source).not.toContain('090c5cfd-751d-490a-894a-3ce6f1109419');
    expect(source).not.toMatch(
      /8e3af657-a8ff-443c-a75c-2fe8c4bcb635|b24988ac-6180-42a0-ab88-20f7382dd24c/,
    );
    const assignments = source.match(/Microsoft\.Authorization\/roleAssignments@/g) ?? [];
    expect(assignments.length).toBeGreaterThanOrEqual(5);
    expect(source.match(/principalId: functionApp\.identity\.principalId/g)?.length).toBe(
      assignments.length,
    );
    expect(source).toMatch(/identity: \{\s*type: 'SystemAssigned'/);
    expect(source).toMatch(/disableLocalAuth: true/);
    expect(source).not.toMatch(
      /listKeys|AuthorizationRules|RootManageSharedAccessKey|SharedAccessKey=/i,
    );
    expect(source).toMatch(/ServiceBusConnection__fullyQualifiedNamespace/);
  });
});
