/**
 * infra/gcp, validated offline (no provider can be downloaded here): HashiCorp's HCL parser
 * (the one Terraform uses, in the Go tool infra/gcp/check) parses every file and every
 * reference resolves; the topology has what the issue asks; checkov (PyPI) finds nothing.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPLY_KEY, targetFilter } from 'cloudmom/gcp';
import { beforeAll, describe, expect, it } from 'vitest';
import { goBuild } from '../emulators/gcp/pstest.ts';
import { pyTool, ROOT, run } from '../emulators/harness.ts';

interface Block {
  type: string;
  labels: string[];
  file: string;
  attrs: Record<string, string>;
  blocks: Block[];
}
interface Summary {
  files: string[];
  diagnostics: string[];
  blocks: Block[];
  unresolved: string[];
}

const INFRA = join(ROOT, 'infra/gcp');
let checker: string;
let tf: Summary;

function check(dir: string): Summary {
  return JSON.parse(run(checker, [dir], 'infra/gcp/check is built with Go')) as Summary;
}
const resources = (type: string) =>
  tf.blocks.filter((b) => b.type === 'resource' && b.labels[0] === type);
const resource = (type: string, name: string) => {
  const r = resources(type).find((b) => b.labels[1] === name);
  if (!r) throw new Error(`no ${type}.${name}`);
  return r;
};
const sub = (b: Block, type: string) => b.blocks.find((x) => x.type === type);

describe('infra/gcp (Terraform)', () => {
  beforeAll(() => {
    checker = goBuild(join(INFRA, 'check'), 'hclcheck');
    tf = check(INFRA);
  }, 300_000);

  it('parses with the HCL parser and every reference resolves', () => {
    expect(tf.files.length).toBeGreaterThanOrEqual(5);
    expect(tf.diagnostics).toEqual([]);
    expect(tf.unresolved).toEqual([]);
    expect(tf.blocks.filter((b) => b.type === 'resource').length).toBeGreaterThan(20);
  });

  it('the checker does catch a syntax error and a dangling reference', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cloudmom-tf-'));
    try {
      cpSync(INFRA, dir, { recursive: true, filter: (p) => !p.includes('/check') });
      writeFileSync(
        join(dir, 'broken.tf'),
        'resource "google_pubsub_topic" "x" {\n  name = google_pubsub_topic.nope.name\n}\n',
      );
      expect(check(dir).unresolved.join()).toContain('google_pubsub_topic.nope');
      writeFileSync(join(dir, 'broken.tf'), 'resource "google_pubsub_topic" "x" {\n  name = \n');
      expect(check(dir).diagnostics.length).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has the example topology: topics, filtered push subscription with dead-letter policy, reply topic', () => {
    const topics = resources('google_pubsub_topic');
    expect(topics.map((t) => t.labels[1]).sort()).toEqual(['app', 'dead_letter', 'replies']);
    for (const t of topics) expect(t.attrs.kms_key_name).toBe('google_kms_crypto_key.pubsub.id');
    const push = resource('google_pubsub_subscription', 'audit_push');
    // The same filter targetFilter() builds, in HCL's escaping.
    expect(JSON.parse(push.attrs.filter!)).toBe(targetFilter('audit'));
    const dl = sub(push, 'dead_letter_policy')!;
    expect(dl.attrs.dead_letter_topic).toBe('google_pubsub_topic.dead_letter.id');
    expect(sub(push, 'retry_policy')).toBeDefined();
    expect(sub(sub(push, 'push_config')!, 'oidc_token')).toBeDefined();
  });

  it('grants the Pub/Sub service agent publisher on the dead-letter topic and subscriber on each dead-lettering subscription', () => {
    const agent = 'local.pubsub_agent';
    const pubs = resources('google_pubsub_topic_iam_member').filter(
      (r) => r.attrs.member === agent,
    );
    expect(pubs.map((r) => [r.attrs.topic, r.attrs.role])).toEqual([
      ['google_pubsub_topic.dead_letter.id', '"roles/pubsub.publisher"'],
    ]);
    const withPolicy = resources('google_pubsub_subscription').filter((s) =>
      sub(s, 'dead_letter_policy'),
    );
    const subscriberOn = resources('google_pubsub_subscription_iam_member')
      .filter((r) => r.attrs.member === agent && r.attrs.role === '"roles/pubsub.subscriber"')
      .map((r) => r.attrs.subscription);
    for (const s of withPolicy)
      expect(subscriberOn).toContain(`google_pubsub_subscription.${s.labels[1]}.id`);
  });

  it('deploys the example entrypoints as 2nd gen functions; the Eventarc trigger retries', () => {
    const example = readFileSync(join(ROOT, 'examples/gcp/index.ts'), 'utf8');
    const fns = resources('google_cloudfunctions2_function');
    expect(fns.length).toBe(2);
    for (const f of fns) {
      const entry = JSON.parse(sub(f, 'build_config')!.attrs.entry_point!);
      expect(example).toContain(`'${entry}'`);
      expect(sub(f, 'service_config')!.attrs.service_account_email).toBe(
        'google_service_account.functions.email',
      );
    }
    const trigger = sub(resource('google_cloudfunctions2_function', 'rpc'), 'event_trigger')!;
    expect(trigger.attrs.retry_policy).toBe('"RETRY_POLICY_RETRY"');
    expect(trigger.attrs.event_type).toBe('"google.cloud.pubsub.topic.v1.messagePublished"');
    expect(trigger.attrs.pubsub_topic).toBe('google_pubsub_topic.app.id');
  });

  it('least privilege: no project-wide Pub/Sub, owner or editor role; rights on single topics and subscriptions', () => {
    // Project-level grants: predefined roles named literally, none of Pub/Sub's (a custom
    // role's id would hide what it grants), no owner, editor or admin.
    for (const r of resources('google_project_iam_member')) {
      expect(r.attrs.role, r.labels[1]).toMatch(/^"roles\/[A-Za-z.]+"$/);
      expect(r.attrs.role, r.labels[1]).not.toMatch(/pubsub\.|owner|editor|admin/);
    }
    // No custom role with Pub/Sub rights: subscriptions have no IAM condition on their name
    // and no parent narrower than the project, so such a role could only be granted
    // project-wide (consume or delete any subscription, production ones included).
    for (const r of resources('google_project_iam_custom_role'))
      expect(r.attrs.permissions, r.labels[1]).not.toMatch(/pubsub\./);
    const sa = resources('google_service_account').map((r) => r.labels[1]);
    expect(sa.sort()).toEqual(['functions', 'push_invoker', 'trigger']);
  });

  it('requesters read only their own provisioned reply subscription and publish only to the app topic', () => {
    const replies = resource('google_pubsub_subscription', 'replies');
    expect(replies.attrs.for_each).toBe('var.requesters');
    expect(replies.attrs.topic).toBe('google_pubsub_topic.replies.id');
    // the filter the broker's reply key selects (its instanceId), and the broker's default
    // name for it (<replyTopic>-<instanceId>)
    const filter = JSON.parse(replies.attrs.filter!) as string;
    expect(filter.replace(`\${each.key}`, 'api-1')).toBe(`attributes.${REPLY_KEY} = "api-1"`);
    expect(JSON.parse(replies.attrs.name!)).toBe(`\${var.name}-replies-\${each.key}`);
    expect(JSON.parse(resource('google_pubsub_topic', 'replies').attrs.name!)).toBe(
      `\${var.name}-replies`,
    );
    const read = resource('google_pubsub_subscription_iam_member', 'requesters_read_replies');
    expect(read.attrs).toMatchObject({
      for_each: 'var.requesters',
      subscription: 'google_pubsub_subscription.replies[each.key].id',
      role: '"roles/pubsub.subscriber"',
      member: 'each.value',
    });
    const publish = resource('google_pubsub_topic_iam_member', 'requesters_publish');
    expect(publish.attrs).toMatchObject({
      for_each: 'var.requesters',
      topic: 'google_pubsub_topic.app.id',
      role: '"roles/pubsub.publisher"',
      member: 'each.value',
    });
    // the requesters' principals appear in no other grant
    const grants = tf.blocks.filter(
      (b) =>
        b.type === 'resource' &&
        /_iam_/.test(b.labels[0]!) &&
        Object.values(b.attrs).some((v) => v.includes('var.requesters')),
    );
    expect(grants.map((b) => `${b.labels[0]}.${b.labels[1]}`).sort()).toEqual([
      'google_pubsub_subscription_iam_member.requesters_read_replies',
      'google_pubsub_topic_iam_member.requesters_publish',
    ]);
  });

  it('checkov finds nothing unexplained', { timeout: 600_000 }, () => {
    // The checkov venv is shared with the other platforms' IaC tests: use it as it is when it
    // exists (pyTool reinstalls when its requirement string differs), and run under a shared
    // lock so an install (exclusive lock in pyTool) cannot remove it mid-run.
    const venv = join(ROOT, '.cache', 'py-checkov');
    const bin = existsSync(join(venv, 'bin', 'checkov'))
      ? join(venv, 'bin')
      : pyTool('checkov', ['checkov']);
    const r = spawnSync(
      'flock',
      [
        '-s',
        `${venv}.lock`,
        `${bin}/checkov`,
        ...['-d', INFRA, '--framework', 'terraform', '--skip-download', '--compact', '-o', 'json'],
      ],
      {
        encoding: 'utf8',
        timeout: 300_000,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, BC_SKIP_MAPPING: 'TRUE', CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: 'false' },
      },
    );
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    expect(report.summary.parsing_errors).toBe(0);
    expect(
      report.results.failed_checks.map(
        (c: { check_id: string; resource: string; check_name: string }) =>
          `${c.check_id} ${c.resource}: ${c.check_name}`,
      ),
    ).toEqual([]);
    // The checks that matter here ran and passed: CMEK on every topic, no public topic
    // grant, no project-level impersonation, admin or service-account-user role.
    const passed = new Set(
      (report.results.passed_checks as { check_id: string; resource: string }[]).map(
        (c) => `${c.check_id} ${c.resource}`,
      ),
    );
    for (const t of ['app', 'dead_letter', 'replies'])
      expect(passed).toContain(`CKV_GCP_83 google_pubsub_topic.${t}`);
    for (const r of resources('google_pubsub_topic_iam_member'))
      expect(
        [...passed].some((p) => p.startsWith(`CKV_GCP_99 ${r.labels[0]}.${r.labels[1]}`)),
      ).toBe(true);
    for (const r of resources('google_project_iam_member'))
      for (const id of ['CKV_GCP_41', 'CKV_GCP_42', 'CKV_GCP_46', 'CKV_GCP_49'])
        expect(passed).toContain(`${id} google_project_iam_member.${r.labels[1]}`);
    expect(report.summary.passed).toBeGreaterThanOrEqual(19);
    // Every resource block was scanned (for_each ones count once per known key).
    expect(report.summary.resource_count).toBeGreaterThanOrEqual(
      tf.blocks.filter((b) => b.type === 'resource').length,
    );
    // A skip must carry its reason in the source (`# checkov:skip=ID: reason`).
    const source = tf.files.map((f) => readFileSync(join(INFRA, f), 'utf8')).join('\n');
    for (const s of report.results.skipped_checks as { check_id: string }[])
      expect(source).toMatch(new RegExp(`checkov:skip=${s.check_id}: \\S.{10,}`));
  });
});
