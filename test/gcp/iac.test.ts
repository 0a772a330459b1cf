/**
 * infra/gcp (generated from examples/topology.ts), validated offline (no provider can be
 * downloaded here): HashiCorp's HCL parser (the one Terraform uses, in the Go tool
 * infra/gcp/check) parses every file and every reference resolves; the topology has what the
 * issue asks (per service: a filtered subscription, a dead-letter policy above maxDeliveries,
 * retry, ack deadline, ordering, its own dead-letter topic, function and identities); checkov
 * (PyPI) finds nothing.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPLY_KEY, targetFilter } from 'cloudmom/gcp';
import { beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../../examples/topology.ts';
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

  const names = topology.names();
  const ids = topology.services.map((s) => s.name.replace(/-/g, '_'));

  it('has the example topology: CMEK topics, one filtered push subscription per service with its dead-letter topic, reply topic', () => {
    const topics = resources('google_pubsub_topic');
    expect(topics.map((t) => t.labels[1]).sort()).toEqual(
      ['app', 'replies', ...ids.map((id) => `dead_letter_${id}`)].sort(),
    );
    for (const t of topics) expect(t.attrs.kms_key_name).toBe('google_kms_crypto_key.pubsub.id');
    expect(JSON.parse(resource('google_pubsub_topic', 'app').attrs.name!)).toBe(names.topic);
    const routed: string[] = [];
    for (const s of topology.services) {
      const id = s.name.replace(/-/g, '_');
      const push = resource('google_pubsub_subscription', `service_${id}`);
      expect(JSON.parse(push.attrs.name!)).toBe(names.services[s.name]!.queue);
      expect(push.attrs.topic).toBe('google_pubsub_topic.app.id');
      // The same filter targetFilter() builds, in HCL's escaping.
      expect(JSON.parse(push.attrs.filter!)).toBe(targetFilter(...s.targets.map((t) => t.name)));
      routed.push(...s.targets.map((t) => t.name));
      const dl = sub(push, 'dead_letter_policy')!;
      expect(dl.attrs.dead_letter_topic).toBe(`google_pubsub_topic.dead_letter_${id}.id`);
      const attempts = Number(dl.attrs.max_delivery_attempts);
      expect(attempts).toBeGreaterThan(s.maxDeliveries); // cloudmom dead-letters first, with the reason
      expect(attempts).toBeGreaterThanOrEqual(5);
      expect(attempts).toBeLessThanOrEqual(100);
      const retry = sub(push, 'retry_policy')!;
      expect(JSON.parse(retry.attrs.minimum_backoff!)).toBe(`${s.retry.baseDelayMs / 1000}s`);
      expect(JSON.parse(retry.attrs.maximum_backoff!)).toBe(
        `${Math.min(600, s.retry.maxDelayMs / 1000)}s`,
      );
      const ack = Number(push.attrs.ack_deadline_seconds);
      expect(ack).toBeGreaterThanOrEqual(Math.max(10, s.timeoutSeconds));
      expect(ack).toBeLessThanOrEqual(600);
      expect(push.attrs.enable_message_ordering).toBe(String(s.ordered));
      const config = sub(push, 'push_config')!;
      expect(config.attrs.push_endpoint).toBe(
        `google_cloudfunctions2_function.${id}.service_config[0].uri`,
      );
      expect(sub(config, 'oidc_token')!.attrs.service_account_email).toBe(
        `google_service_account.invoker_${id}.email`,
      );
      // the dead letters are readable: a pull subscription of the same name on the topic
      const dls = resource('google_pubsub_subscription', `dead_letter_${id}`);
      expect(JSON.parse(dls.attrs.name!)).toBe(names.services[s.name]!.deadLetter);
      expect(dls.attrs.topic).toBe(`google_pubsub_topic.dead_letter_${id}.id`);
    }
    expect(routed.sort()).toEqual(
      topology
        .targets()
        .map((t) => t.name)
        .sort(),
    );
  });

  it('grants the Pub/Sub service agent publisher on each dead-letter topic and subscriber on each dead-lettering subscription', () => {
    const agent = 'local.pubsub_agent';
    const pubs = resources('google_pubsub_topic_iam_member').filter(
      (r) => r.attrs.member === agent,
    );
    expect(pubs.map((r) => [r.attrs.topic, r.attrs.role]).sort()).toEqual(
      ids
        .map((id) => [`google_pubsub_topic.dead_letter_${id}.id`, '"roles/pubsub.publisher"'])
        .sort(),
    );
    const withPolicy = resources('google_pubsub_subscription').filter((s) =>
      sub(s, 'dead_letter_policy'),
    );
    expect(withPolicy.length).toBe(topology.services.length);
    const subscriberOn = resources('google_pubsub_subscription_iam_member')
      .filter((r) => r.attrs.member === agent && r.attrs.role === '"roles/pubsub.subscriber"')
      .map((r) => r.attrs.subscription);
    for (const s of withPolicy)
      expect(subscriberOn).toContain(`google_pubsub_subscription.${s.labels[1]}.id`);
  });

  it('deploys one 2nd gen function per service, entry point registered by examples/gcp, its own runtime identity', () => {
    const example = readFileSync(join(ROOT, 'examples/gcp/index.ts'), 'utf8');
    // the example registers one push function per topology service, under its name
    expect(example).toMatch(/for \(const service of servicesOf\(\)\)/);
    expect(example).toMatch(/functions\.http\(service, pushHandler\(/);
    const fns = resources('google_cloudfunctions2_function');
    expect(fns.map((f) => f.labels[1]).sort()).toEqual([...ids].sort());
    for (const s of topology.services) {
      const id = s.name.replace(/-/g, '_');
      const f = resource('google_cloudfunctions2_function', id);
      expect(JSON.parse(sub(f, 'build_config')!.attrs.entry_point!)).toBe(s.name);
      const config = sub(f, 'service_config')!;
      expect(config.attrs.service_account_email).toBe(`google_service_account.runtime_${id}.email`);
      expect(Number(config.attrs.timeout_seconds)).toBe(s.timeoutSeconds);
      expect(config.attrs.ingress_settings).toBe('"ALLOW_INTERNAL_ONLY"');
      expect(config.attrs.environment_variables).toContain(`CLOUDMOM_SERVICE`);
      expect(config.attrs.environment_variables).toContain(
        `google_pubsub_topic.dead_letter_${id}.name`,
      );
      expect(sub(f, 'event_trigger')).toBeUndefined(); // pushed by its filtered subscription
    }
  });

  it('least privilege: no project-wide role; each identity has rights on its own topics, subscription and function only', () => {
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
    expect(sa.sort()).toEqual(ids.flatMap((id) => [`invoker_${id}`, `runtime_${id}`]).sort());
    for (const s of topology.services) {
      const id = s.name.replace(/-/g, '_');
      const publishes = resource('google_pubsub_topic_iam_member', `${id}_publishes`);
      expect(publishes.attrs.member).toContain(`google_service_account.runtime_${id}.email`);
      expect(publishes.attrs.role).toBe('"roles/pubsub.publisher"');
      const topics = publishes.attrs.for_each!;
      expect(topics).toContain('google_pubsub_topic.app.id');
      expect(topics).toContain(`google_pubsub_topic.dead_letter_${id}.id`);
      expect(topics.includes('google_pubsub_topic.replies.id')).toBe(s.replies);
      for (const other of ids.filter((o) => o !== id))
        expect(topics).not.toContain(`dead_letter_${other}`);
      const invoker = resource('google_cloud_run_v2_service_iam_member', `${id}_invoker`);
      expect(invoker.attrs).toMatchObject({
        name: `google_cloudfunctions2_function.${id}.service_config[0].service`,
        role: '"roles/run.invoker"',
      });
      expect(invoker.attrs.member).toContain(`google_service_account.invoker_${id}.email`);
      const mints = resource('google_service_account_iam_member', `agent_mints_${id}_tokens`);
      expect(mints.attrs.service_account_id).toBe(`google_service_account.invoker_${id}.name`);
    }
  });

  it('requesters read only their own provisioned reply subscription and publish only to the app topic', () => {
    const replies = resource('google_pubsub_subscription', 'replies');
    expect(replies.attrs.for_each).toBe('var.requesters');
    expect(replies.attrs.topic).toBe('google_pubsub_topic.replies.id');
    // the filter the broker's reply key selects (its instanceId), and the broker's default
    // name for it (<replyTopic>-<instanceId>)
    const filter = JSON.parse(replies.attrs.filter!) as string;
    expect(filter.replace(`\${each.key}`, 'api-1')).toBe(`attributes.${REPLY_KEY} = "api-1"`);
    expect(JSON.parse(replies.attrs.name!)).toBe(`${names.replies}-\${each.key}`);
    expect(JSON.parse(resource('google_pubsub_topic', 'replies').attrs.name!)).toBe(names.replies);
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
    // Through the venv's python: the script's #! line names where the venv was created.
    const r = spawnSync(
      'flock',
      [
        '-s',
        `${venv}.lock`,
        `${bin}/python3`,
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
    const topics = resources('google_pubsub_topic');
    for (const t of topics)
      expect(passed).toContain(`CKV_GCP_83 google_pubsub_topic.${t.labels[1]}`);
    for (const r of resources('google_pubsub_topic_iam_member'))
      expect(
        [...passed].some((p) => p.startsWith(`CKV_GCP_99 ${r.labels[0]}.${r.labels[1]}`)),
      ).toBe(true);
    for (const r of resources('google_project_iam_member'))
      for (const id of ['CKV_GCP_41', 'CKV_GCP_42', 'CKV_GCP_46', 'CKV_GCP_49'])
        expect(passed).toContain(`${id} google_project_iam_member.${r.labels[1]}`);
    expect(report.summary.passed).toBeGreaterThanOrEqual(
      topics.length + resources('google_pubsub_topic_iam_member').length,
    );
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
