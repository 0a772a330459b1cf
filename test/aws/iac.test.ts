/**
 * serverless.yml, validated offline: `osls package` without credentials or network, then
 * cfn-lint and checkov (PyPI, in locked venvs under .cache) on the generated CloudFormation,
 * then the properties that matter, asserted on the template itself (some of them — SNS
 * subscriptions, queue policies — moto's CloudFormation does not create, so this is where
 * they are checked).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TARGETS } from '../../examples/app.ts';
import { topology } from '../../examples/topology.ts';
import {
  extractZip,
  osls,
  packageExamples,
  REGION,
  stackNames,
  zipEntries,
} from '../../infra/aws/stack.ts';
import { defineTopology } from '../../src/index.ts';
import { awsNames, generateAws } from '../../src/infra/index.ts';
import { cacheDir, pyTool, ROOT } from '../emulators/harness.ts';

const CFN_LINT = 'cfn-lint==1.*';
// The same requirement as the other platforms' IaC tests: they share one venv
// (.cache/py-checkov); a different string would make each reinstall it over the other.
const CHECKOV = 'checkov';
const STAGE = 'iac';

type Json = any;
interface Resource {
  Type: string;
  Properties?: Json;
  DependsOn?: string | string[];
}

let dir: string;
let template: { Resources: Record<string, Resource>; Outputs?: Json };
let entries: string[];
let zipPath: string;

function ofType(type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

function resource(id: string): Resource {
  const r = template.Resources[id];
  if (!r) throw new Error(`no resource ${id} in the template`);
  return r;
}

/** The topology's service of a function's logical id (`GreeterLambdaFunction` → greeter). */
function serviceOf(fnId: string) {
  const base = fnId.replace(/LambdaFunction$/, '');
  return topology.service(base.charAt(0).toLowerCase() + base.slice(1));
}

/** `{Ref: X}`, `{Fn::GetAtt: [X, ...]}` or `{Fn::Sub: '${X.Arn}'}` → X. */
function refId(value: Json): string | undefined {
  if (value && typeof value === 'object') {
    if (typeof value.Ref === 'string') return value.Ref;
    if (Array.isArray(value['Fn::GetAtt'])) return value['Fn::GetAtt'][0];
    if (typeof value['Fn::Sub'] === 'string')
      return /^\$\{(\w+)\.Arn\}$/.exec(value['Fn::Sub'])?.[1];
  }
  return undefined;
}

const list = <T>(v: T | T[] | undefined): T[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

/** Every IAM statement in the template: role policies, managed policies, resource policies. */
function statements(): { where: string; statement: Json }[] {
  const out: { where: string; statement: Json }[] = [];
  for (const [id, r] of Object.entries(template.Resources)) {
    const docs: Json[] = [];
    if (r.Type === 'AWS::IAM::Role') {
      docs.push(r.Properties.AssumeRolePolicyDocument);
      for (const p of list(r.Properties.Policies)) docs.push((p as Json).PolicyDocument);
    }
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
      docs.push(r.Properties.PolicyDocument);
    if (/::(QueuePolicy|BucketPolicy|TopicPolicy)$/.test(r.Type))
      docs.push(r.Properties.PolicyDocument);
    for (const doc of docs)
      for (const s of list(doc?.Statement)) out.push({ where: id, statement: s });
  }
  return out;
}

/**
 * Functions an SNS topic invokes directly that would lose a failing event: SNS invokes Lambda
 * asynchronously, Lambda retries a failed event twice and then drops it, unless the function
 * has an on-failure destination (`AWS::Lambda::EventInvokeConfig`, serverless.yml
 * `destinations.onFailure`) or a function dead-letter queue (`DeadLetterConfig`). The shapes
 * osls generates for `events: [sns: ...]`: a Subscription with protocol `lambda`, and a
 * Permission for `sns.amazonaws.com`.
 */
function snsFunctionsLosingFailures(resources: Record<string, Resource>): string[] {
  const invoked = new Set<string>();
  const covered = new Set<string>();
  for (const [id, r] of Object.entries(resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::SNS::Subscription' && p.Protocol === 'lambda') {
      const fn = refId(p.Endpoint);
      if (fn) invoked.add(fn);
    }
    if (r.Type === 'AWS::Lambda::Permission' && p.Principal === 'sns.amazonaws.com') {
      const fn = refId(p.FunctionName);
      if (fn) invoked.add(fn);
    }
    if (
      r.Type === 'AWS::Lambda::EventInvokeConfig' &&
      p.DestinationConfig?.OnFailure?.Destination
    ) {
      const fn = refId(p.FunctionName);
      if (fn) covered.add(fn);
    }
    if (r.Type === 'AWS::Lambda::Function' && p.DeadLetterConfig?.TargetArn) covered.add(id);
  }
  return [...invoked].filter((fn) => !covered.has(fn)).sort();
}

/**
 * A venv's console script run by the venv's python (not through its shebang, which names the
 * folder the venv was created in: the shared .cache outlives the worktree that made it).
 */
function venvScript(bin: string, script: string, args: string[]): [string, string[]] {
  return [join(bin, 'python'), [join(bin, script), ...args]];
}

beforeAll(async () => {
  dir = mkdtempSync(join(cacheDir('aws-iac'), 'run-'));
  // No AWS credentials, profile, endpoint or network: packaging must not need them.
  const packaged = await packageExamples(STAGE, join(dir, 'package'));
  template = packaged.template as typeof template;
  zipPath = packaged.zip;
  entries = zipEntries(packaged.zip);
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('serverless.yml: offline package and scanners', () => {
  it('packages offline into a template and a zip holding only the bundled handler', () => {
    expect(Object.keys(template.Resources).length).toBeGreaterThan(10);
    expect(entries).toEqual(['examples/aws/dist/handler.mjs']);
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      expect(fn.Properties.Handler).toBe('examples/aws/dist/handler.handler');
    }
  });

  it('runs the zipped bundle in a bare Node 22 with the AWS SDK only on NODE_PATH, as Lambda does', () => {
    // Outside the repository, so nothing resolves from its node_modules: only NODE_PATH, which
    // on Lambda holds the runtime's AWS SDK.
    const task = mkdtempSync(join(tmpdir(), 'cloudmom-task-'));
    try {
      extractZip(zipPath, task);
      const bundle = join(task, 'examples/aws/dist/handler.mjs');
      // Our code + middy; the SDK (megabytes) is not in it.
      expect(statSync(bundle).size).toBeLessThan(100_000);
      const source = readFileSync(bundle, 'utf8');
      expect(source).not.toMatch(/@azure\/|@google-cloud\//);
      const record = (id: string, target: string) => ({
        messageId: id,
        receiptHandle: `rh-${id}`,
        body: '{"n":1}',
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()) },
        messageAttributes: {
          target: {
            stringValue: target,
            stringListValues: [],
            binaryListValues: [],
            dataType: 'String',
          },
          content_type: {
            stringValue: 'application/json',
            stringListValues: [],
            binaryListValues: [],
            dataType: 'String',
          },
        },
        md5OfBody: '-',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:cloudmom-examples-iac-worker',
        awsRegion: 'us-east-1',
      });
      // audit succeeds and flaky fails (delivery 1 of 5): neither needs a network call.
      const event = { Records: [record('m-audit', 'audit'), record('m-flaky', 'flaky')] };
      const runner = join(task, 'invoke.mjs');
      writeFileSync(
        runner,
        `const { handler } = await import(${JSON.stringify(bundle)});\n` +
          `const out = await handler(${JSON.stringify(event)}, { awsRequestId: 'r1', getRemainingTimeInMillis: () => 10000 });\n` +
          'process.stdout.write(JSON.stringify(out));\n',
      );
      const r = spawnSync(process.execPath, [runner], {
        cwd: task,
        encoding: 'utf8',
        timeout: 30_000,
        env: {
          PATH: process.env.PATH,
          NODE_PATH: join(ROOT, 'node_modules'),
          AWS_REGION: 'us-east-1',
          // With an emulator endpoint the entrypoint loads the SDK at init (through NODE_PATH
          // here); nothing is sent to it.
          AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
          CLOUDMOM_QUEUE_URL:
            'https://sqs.us-east-1.amazonaws.com/123456789012/cloudmom-examples-iac-worker',
          CLOUDMOM_LOG_LEVEL: 'error',
        },
      });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-flaky' }] });
    } finally {
      rmSync(task, { recursive: true, force: true });
    }
  });

  it('passes cfn-lint with no finding (errors, warnings or informational)', () => {
    const bin = pyTool('cfn-lint', [CFN_LINT]);
    for (const file of ['update', 'create']) {
      const r = spawnSync(
        ...venvScript(bin, 'cfn-lint', [
          '--config-file',
          join(ROOT, 'infra/aws/cfn-lint.yaml'),
          '--',
          join(dir, `package/cloudformation-template-${file}-stack.json`),
        ]),
        { encoding: 'utf8', timeout: 120_000 },
      );
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
      expect(r.status).toBe(0);
    }
  }, 240_000);

  it('passes checkov with no finding beyond the documented skips', () => {
    const bin = pyTool('checkov', [CHECKOV]);
    const r = spawnSync(
      ...venvScript(bin, 'checkov', [
        '--config-file',
        join(ROOT, 'infra/aws/checkov.yaml'),
        '-f',
        join(dir, 'package/cloudformation-template-update-stack.json'),
        '-o',
        'json',
      ]),
      { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 * 1024 * 1024 },
    );
    const report = JSON.parse(r.stdout);
    const failed = report.results.failed_checks.map(
      (c: Json) => `${c.check_id} ${c.resource}: ${c.check_name}`,
    );
    expect(failed).toEqual([]);
    expect(report.summary.passed).toBeGreaterThan(20);
    expect(report.summary.parsing_errors).toBe(0);
    expect(report.summary.resource_count).toBe(Object.keys(template.Resources).length);
    expect(r.status).toBe(0);
  }, 300_000);

  it('an ordered topology (FIFO topic and queues) packages offline and passes cfn-lint too', async () => {
    const ledger = defineTopology({
      name: 'ledger',
      defaults: { timeoutSeconds: 20 },
      services: {
        posts: { targets: ['entry.posted', 'entry.voided'], ordered: true },
        'audit-log': { targets: { 'entry.audited': { replies: false } }, ordered: true },
      },
    });
    const service = join(dir, 'fifo');
    mkdirSync(service, { recursive: true });
    const [file] = generateAws(ledger, {
      handler: 'handler.handler',
      package: { patterns: ['!**', 'handler.mjs'], excludeDevDependencies: false },
    });
    writeFileSync(join(service, file!.path), file!.content);
    writeFileSync(
      join(service, 'handler.mjs'),
      'export const handler = async () => ({ batchItemFailures: [] });\n',
    );
    const out = join(service, 'package');
    await osls(
      ['package', '--stage', STAGE, '--region', REGION, '--package', out],
      {},
      `${service}.home`,
      180_000,
      service,
    );
    const fifo = JSON.parse(
      readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'),
    );
    const names = awsNames(ledger, STAGE);
    const r = fifo.Resources as Record<string, Resource>;
    expect(r.EventsTopic!.Properties).toMatchObject({ TopicName: names.topic, FifoTopic: true });
    expect(names.topic).toBe('ledger-iac.fifo');
    expect(r.PostsQueue!.Properties).toMatchObject({
      QueueName: 'ledger-iac-posts.fifo',
      FifoQueue: true,
    });
    expect(r.AuditDashlogDeadLetterQueue!.Properties).toMatchObject({
      QueueName: names.services['audit-log']!.deadLetter,
      FifoQueue: true,
    });
    expect(r.AuditDashlogLambdaFunction!.Properties.FunctionName).toBe('ledger-iac-audit-log');
    const mappings = Object.values(r).filter((x) => x.Type === 'AWS::Lambda::EventSourceMapping');
    expect(mappings.length).toBe(2);
    for (const m of mappings) expect(m.Properties.MaximumBatchingWindowInSeconds).toBeUndefined();
    const bin = pyTool('cfn-lint', [CFN_LINT]);
    const lint = spawnSync(
      ...venvScript(bin, 'cfn-lint', [
        '--config-file',
        join(ROOT, 'infra/aws/cfn-lint.yaml'),
        '--',
        join(out, 'cloudformation-template-update-stack.json'),
      ]),
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe('');
    expect(lint.status).toBe(0);
  }, 240_000);

  it('every checkov skip in infra/aws/checkov.yaml carries its reason', () => {
    const lines = readFileSync(join(ROOT, 'infra/aws/checkov.yaml'), 'utf8').split('\n');
    const skips = lines.flatMap((line, i) => {
      const m = /^\s+-\s+(CKV2?_\w+)\s*$/.exec(line);
      return m ? [{ id: m[1]!, i }] : [];
    });
    expect(skips.length).toBeGreaterThan(0);
    for (const { id, i } of skips) {
      const reason = lines[i - 1] ?? '';
      // The comment block right above the entry: starts by naming the check, then why.
      let j = i - 1;
      while (j > 0 && /^\s*#/.test(lines[j - 1] ?? '')) j--;
      expect(lines[j], `skip ${id} must be explained right above it`).toMatch(
        new RegExp(`#\\s+${id}\\b`),
      );
      expect(reason).toMatch(/^\s*#\s+\S/);
      expect(i - j, `skip ${id}: the reason needs at least two lines`).toBeGreaterThanOrEqual(2);
    }
  });
});

describe('serverless.yml: the properties that matter', () => {
  it('is generated from the topology, and names every resource as the topology does', () => {
    expect(readFileSync(join(ROOT, 'serverless.yml'), 'utf8')).toMatch(
      /^# Generated from the topology "cloudmom-examples" by cloudmom\/infra/,
    );
    const names = stackNames(STAGE);
    expect(resource('EventsTopic').Properties.TopicName).toBe(names.topic);
    expect(names.topic).toBe(topology.names(STAGE).topic);
    expect(resource('RepliesQueue').Properties.QueueName).toBe(names.replies);
    for (const s of topology.services) {
      const n = names.services[s.name]!;
      const id = s.name.charAt(0).toUpperCase() + s.name.slice(1);
      expect(resource(`${id}Queue`).Properties.QueueName).toBe(
        topology.names(STAGE).services[s.name]!.queue,
      );
      expect(resource(`${id}Queue`).Properties.QueueName).toBe(n.queue);
      expect(resource(`${id}DeadLetterQueue`).Properties.QueueName).toBe(n.deadLetter);
      expect(resource(`${id}LambdaFunction`).Properties.FunctionName).toBe(n.function);
      expect(resource(`${id}LogGroup`).Properties.LogGroupName).toBe(n.logGroup);
    }
    expect(ofType('AWS::Lambda::Function').length).toBe(topology.services.length);
  });

  it('encrypts every queue (SSE-SQS or KMS) and the topic (KMS)', () => {
    const queues = ofType('AWS::SQS::Queue');
    expect(queues.length).toBe(5);
    for (const [id, q] of queues) {
      const sse = q.Properties.SqsManagedSseEnabled === true || q.Properties.KmsMasterKeyId;
      expect(sse, `${id} must be encrypted at rest`).toBeTruthy();
    }
    for (const [, t] of ofType('AWS::SNS::Topic')) expect(t.Properties.KmsMasterKeyId).toBeTruthy();
  });

  it('gives each inbound queue a dead-letter queue (redrive, maxReceiveCount) kept 14 days', () => {
    for (const id of ['GreeterQueue', 'WorkerQueue']) {
      const redrive = resource(id).Properties.RedrivePolicy;
      expect(redrive.maxReceiveCount).toBe(5);
      expect(resource(id).Properties.MessageRetentionPeriod).toBe(topology.retentionSeconds);
      const dlq = resource(refId(redrive.deadLetterTargetArn)!);
      expect(dlq.Type).toBe('AWS::SQS::Queue');
      expect(dlq.Properties.MessageRetentionPeriod).toBe(1_209_600);
      expect(dlq.Properties.RedrivePolicy).toBeUndefined();
    }
  });

  it('maps each queue to its function with ReportBatchItemFailures and bounded concurrency', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    expect(mappings.length).toBe(2);
    const seen = new Set<string>();
    for (const [, m] of mappings) {
      const p = m.Properties;
      expect(p.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(p.Enabled).toBe(true);
      expect(p.BatchSize).toBeLessThanOrEqual(10);
      expect(p.ScalingConfig.MaximumConcurrency).toBeGreaterThanOrEqual(2);
      seen.add(`${refId(p.EventSourceArn)}→${refId(p.FunctionName)}`);
    }
    expect([...seen].sort()).toEqual([
      'GreeterQueue→GreeterLambdaFunction',
      'WorkerQueue→WorkerLambdaFunction',
    ]);
  });

  it('keeps visibility timeout ≥ 6 × function timeout + batching window', () => {
    for (const [, m] of ofType('AWS::Lambda::EventSourceMapping')) {
      const p = m.Properties;
      const fn = resource(refId(p.FunctionName)!);
      const queue = resource(refId(p.EventSourceArn)!);
      const needed = 6 * fn.Properties.Timeout + (p.MaximumBatchingWindowInSeconds ?? 0);
      expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(needed);
    }
  });

  it('runs Node 22 and configures the entrypoint through its environment', () => {
    const fns = ofType('AWS::Lambda::Function');
    expect(fns.length).toBe(2);
    for (const [id, fn] of fns) {
      const p = fn.Properties;
      expect(p.Runtime).toBe('nodejs22.x');
      const env = p.Environment.Variables;
      const base = id.replace(/LambdaFunction$/, '');
      expect(refId(env.CLOUDMOM_QUEUE_URL)).toBe(`${base}Queue`);
      expect(refId(env.CLOUDMOM_DLQ_URL)).toBe(`${base}DeadLetterQueue`);
      const service = serviceOf(id);
      expect(p.Timeout).toBe(service.timeoutSeconds);
      expect(env.CLOUDMOM_MAX_DELIVERIES).toBe('5');
      expect(env.CLOUDMOM_MAX_DELIVERIES).toBe(String(service.maxDeliveries));
      expect(env.CLOUDMOM_CONCURRENCY).toBe(String(service.concurrency));
      expect(env.CLOUDMOM_UNKNOWN_TARGET).toBe('dead-letter');
      if (service.replies) {
        // Replies only to the reply queue, by name or URL.
        const allow = env.CLOUDMOM_REPLY_ALLOW_LIST['Fn::Join'];
        expect(allow[0]).toBe(',');
        expect(allow[1].map(refId)).toEqual(['RepliesQueue', 'RepliesQueue']);
      } else {
        // A one-way service (worker: audit, flaky) may reply nowhere.
        expect(env.CLOUDMOM_REPLY_ALLOW_LIST).toBe('');
      }
      expect(refId(p.Role)).toBe(`${base}Role`);
    }
  });

  it('subscribes queues to the topic with raw delivery and a filter policy on target', () => {
    const subs = ofType('AWS::SNS::Subscription');
    expect(subs.length).toBe(2);
    const routed: string[] = [];
    for (const [, s] of subs) {
      const p = s.Properties;
      expect(p.Protocol).toBe('sqs');
      expect(p.RawMessageDelivery).toBe(true);
      expect(p.FilterPolicyScope).toBe('MessageAttributes');
      expect(Object.keys(p.FilterPolicy)).toEqual(['target']);
      expect(resource(refId(p.TopicArn)!).Type).toBe('AWS::SNS::Topic');
      expect(resource(refId(p.Endpoint)!).Type).toBe('AWS::SQS::Queue');
      routed.push(...p.FilterPolicy.target);
    }
    // Every example target reaches exactly one queue.
    expect(routed.sort()).toEqual(Object.values(TARGETS).sort());
  });

  it('lets only the topic deliver to each subscribed queue (QueuePolicy with aws:SourceArn)', () => {
    for (const [, s] of ofType('AWS::SNS::Subscription')) {
      const queueId = refId(s.Properties.Endpoint)!;
      const topicId = refId(s.Properties.TopicArn)!;
      const policies = ofType('AWS::SQS::QueuePolicy').filter(([, p]) =>
        p.Properties.Queues.some((q: Json) => refId(q) === queueId),
      );
      expect(policies.length, `${queueId} needs a queue policy`).toBe(1);
      const stmts = list(policies[0]![1].Properties.PolicyDocument.Statement) as Json[];
      const allow = stmts.filter((st) => st.Effect === 'Allow');
      expect(allow.length).toBe(1);
      expect(allow[0].Principal).toEqual({ Service: 'sns.amazonaws.com' });
      expect(allow[0].Action).toBe('sqs:SendMessage');
      expect(refId(allow[0].Resource)).toBe(queueId);
      expect(refId(allow[0].Condition.ArnEquals['aws:SourceArn'])).toBe(topicId);
    }
  });

  it('gives every function SNS invokes directly somewhere to put failed events (on-failure destination or DLQ)', () => {
    // The example functions consume SQS queues (synchronous invocations, the queues' DLQs);
    // a function subscribed to the topic itself must not lose events after Lambda's retries.
    expect(snsFunctionsLosingFailures(template.Resources)).toEqual([]);
  });

  it('the on-failure rule flags an SNS-triggered function without a destination, and accepts one with', () => {
    const fn: Resource = { Type: 'AWS::Lambda::Function', Properties: {} };
    const base: Record<string, Resource> = {
      EventsTopic: { Type: 'AWS::SNS::Topic', Properties: {} },
      AuditLambdaFunction: fn,
      AuditSnsSubscriptionEventsTopic: {
        Type: 'AWS::SNS::Subscription',
        Properties: {
          TopicArn: { Ref: 'EventsTopic' },
          Protocol: 'lambda',
          Endpoint: { 'Fn::GetAtt': ['AuditLambdaFunction', 'Arn'] },
        },
      },
      AuditLambdaPermissionEventsTopicSNS: {
        Type: 'AWS::Lambda::Permission',
        Properties: {
          FunctionName: { 'Fn::GetAtt': ['AuditLambdaFunction', 'Arn'] },
          Action: 'lambda:InvokeFunction',
          Principal: 'sns.amazonaws.com',
          SourceArn: { Ref: 'EventsTopic' },
        },
      },
    };
    expect(snsFunctionsLosingFailures(base)).toEqual(['AuditLambdaFunction']);
    const withDestination = {
      ...base,
      AuditLambdaEvConf: {
        Type: 'AWS::Lambda::EventInvokeConfig',
        Properties: {
          FunctionName: { Ref: 'AuditLambdaFunction' },
          Qualifier: '$LATEST',
          DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['AuditDlq', 'Arn'] } } },
        },
      },
    };
    expect(snsFunctionsLosingFailures(withDestination)).toEqual([]);
    const withDlq = {
      ...base,
      AuditLambdaFunction: {
        ...fn,
        Properties: { DeadLetterConfig: { TargetArn: { 'Fn::GetAtt': ['AuditDlq', 'Arn'] } } },
      },
    };
    expect(snsFunctionsLosingFailures(withDlq)).toEqual([]);
  });

  it('grants no wildcard action or resource, and no public principal', () => {
    const all = statements();
    expect(all.length).toBeGreaterThan(5);
    for (const { where, statement: s } of all) {
      if (s.Effect !== 'Allow') continue; // deny statements (osls's TLS-only bucket policy) only restrict
      for (const action of list(s.Action)) {
        expect(action, `${where}: wildcard action`).not.toMatch(/\*/);
      }
      for (const r of list(s.Resource)) {
        expect(typeof r, `${where}: literal resource ${JSON.stringify(r)}`).toBe('object');
        expect(JSON.stringify(r), `${where}: wildcard resource`).not.toMatch(/\*/);
      }
      expect(s.NotAction, `${where}: NotAction`).toBeUndefined();
      expect(s.NotResource, `${where}: NotResource`).toBeUndefined();
      expect(JSON.stringify(s.Principal ?? {}), `${where}: public principal`).not.toMatch(/\*/);
    }
  });

  it('scopes each function role to its own queue, DLQ, the reply queue (if it replies) and its log group', () => {
    expect(topology.services.map((s) => [s.name, s.replies])).toEqual([
      ['greeter', true],
      ['worker', false],
    ]);
    for (const base of ['Greeter', 'Worker']) {
      const replies = serviceOf(`${base}LambdaFunction`).replies;
      const role = resource(`${base}Role`);
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      const granted = new Map<string, Set<string>>();
      for (const p of role.Properties.Policies as Json[]) {
        for (const s of list(p.PolicyDocument.Statement) as Json[]) {
          for (const r of list(s.Resource)) {
            const id = refId(r)!;
            const set = granted.get(id) ?? new Set<string>();
            for (const a of list(s.Action) as string[]) set.add(a);
            granted.set(id, set);
          }
        }
      }
      expect(Object.fromEntries([...granted].map(([k, v]) => [k, [...v].sort()]))).toEqual({
        [`${base}Queue`]: [
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:ReceiveMessage',
        ],
        [`${base}DeadLetterQueue`]: ['sqs:GetQueueUrl', 'sqs:SendMessage'],
        ...(replies && { RepliesQueue: ['sqs:GetQueueUrl', 'sqs:SendMessage'] }),
        [`${base}LogGroup`]: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      });
    }
    // osls's default role (with its broad logs permissions) is not generated.
    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
  });
});
