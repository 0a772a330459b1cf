/**
 * generateAws (cloudmom/infra), pure: the serverless.yml it writes, parsed and checked for
 * structure — the example app, an ordered (FIFO) topology, one without replies, hyphenated and
 * several services, extra reply destinations, per-function options, and what it refuses.
 * (test/aws/iac.test.ts packages the example's file with osls and scans it; deploy.test.ts and
 * e2e.test.ts deploy it into moto.)
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: osls variables (${opt:stage}…) are what serverless.yml holds
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { deploy } from '../../examples/aws/deploy.ts';
import { topology as example } from '../../examples/topology.ts';
import { defineTopology, InvalidArgumentError, type TopologyDefinition } from '../../src/index.ts';
import { type AwsOptions, awsNames, generate, generateAws } from '../../src/infra/index.ts';
import { toYaml, type YamlMap } from '../../src/infra/yaml.ts';

type Json = any;

function render(topology = example, options: AwsOptions = deploy): Json {
  const files = generateAws(topology, options);
  expect(files.map((f) => f.path)).toEqual(['serverless.yml']);
  return parse(files[0]!.content);
}

function refused(
  topology: ReturnType<typeof defineTopology>,
  options: unknown,
  message: RegExp,
): void {
  expect(() => generateAws(topology, options as AwsOptions)).toThrow(InvalidArgumentError);
  expect(() => generateAws(topology, options as AwsOptions)).toThrow(message);
}

const ofType = (doc: Json, type: string): [string, Json][] =>
  Object.entries(doc.resources.Resources as Record<string, Json>).filter(
    ([, r]) => r.Type === type,
  );

/** Resource ids a statement list grants, with the actions. */
function grants(role: Json): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of role.Properties.Policies)
    for (const s of p.PolicyDocument.Statement)
      for (const r of [s.Resource].flat()) {
        const id = r['Fn::GetAtt']?.[0] ?? r['Fn::Sub'] ?? r;
        out[id] = [...(out[id] ?? []), ...[s.Action].flat()].sort();
      }
  return out;
}

const shop: TopologyDefinition = {
  name: 'shop',
  services: {
    'order-sync': { targets: ['order.created', 'order.cancelled'], timeoutSeconds: 30 },
    mailer: { targets: { 'mail.send': { replies: false } }, concurrency: 1, batchSize: 5 },
    billing: { targets: ['invoice.created'], lockSeconds: 600, maxDeliveries: 3 },
  },
};

describe('generateAws: the example app', () => {
  const doc = render();

  it('is the committed serverless.yml, with a header saying how to regenerate it', () => {
    const [file] = generate('aws', example, deploy);
    expect(file!.content).toMatch(
      /^# Generated from the topology "cloudmom-examples" by cloudmom\/infra \(generateAws\): do not edit;\n# change the topology and run `npm run infra`\./,
    );
    expect(file!.content).toContain(
      '#   hello, sum   → cloudmom-examples-<stage>-greeter → greeter λ → cloudmom-examples-<stage>-replies',
    );
    expect(generateAws(example, deploy)).toEqual(generateAws(example, deploy));
  });

  it('is an osls 4 service named after the topology, with the deploy options', () => {
    expect(doc.service).toBe('cloudmom-examples');
    expect(doc.frameworkVersion).toBe('4');
    expect(doc.custom.prefix).toBe('${self:service}-${sls:stage}');
    expect(doc.provider).toMatchObject({
      name: 'aws',
      runtime: 'nodejs22.x',
      architecture: 'arm64',
      stage: "${opt:stage, 'dev'}",
      region: "${opt:region, 'us-east-1'}",
      memorySize: 256,
      logRetentionInDays: 365,
      environment: { CLOUDMOM_LOG_LEVEL: 'warn' },
    });
    expect(doc.package).toEqual({
      excludeDevDependencies: false,
      patterns: ['!**', 'examples/aws/dist/handler.mjs'],
    });
    expect(Object.keys(doc.functions)).toEqual(['greeter', 'worker']);
    for (const f of Object.values(doc.functions) as Json[])
      expect(f.handler).toBe('${file(./infra/aws/bundle.cjs):handler}');
  });

  it('gives each service a function on its queue, configured from the topology', () => {
    for (const s of example.services) {
      const id = s.name.charAt(0).toUpperCase() + s.name.slice(1);
      const f = doc.functions[s.name];
      expect(f.timeout).toBe(s.timeoutSeconds);
      expect(f.role).toEqual({ 'Fn::Sub': `\${${id}Role.Arn}` });
      expect(f.events).toEqual([
        {
          sqs: {
            arn: { 'Fn::GetAtt': [`${id}Queue`, 'Arn'] },
            batchSize: s.batchSize,
            maximumBatchingWindow: 1,
            functionResponseType: 'ReportBatchItemFailures',
            maximumConcurrency: s.concurrency,
          },
        },
      ]);
      expect(f.environment).toMatchObject({
        CLOUDMOM_QUEUE_URL: { Ref: `${id}Queue` },
        CLOUDMOM_DLQ_URL: { Ref: `${id}DeadLetterQueue` },
        CLOUDMOM_MAX_DELIVERIES: String(s.maxDeliveries),
        CLOUDMOM_CONCURRENCY: String(s.concurrency),
        CLOUDMOM_UNKNOWN_TARGET: 'dead-letter',
      });
    }
    expect(doc.functions.greeter.environment.CLOUDMOM_REPLY_ALLOW_LIST).toEqual({
      'Fn::Join': [',', [{ 'Fn::GetAtt': ['RepliesQueue', 'QueueName'] }, { Ref: 'RepliesQueue' }]],
    });
    // worker's targets are one-way: no reply address allowed.
    expect(doc.functions.worker.environment.CLOUDMOM_REPLY_ALLOW_LIST).toBe('');
  });

  it('names resources from the topology under the stage prefix', () => {
    const r = doc.resources.Resources;
    expect(r.EventsTopic.Properties.TopicName).toBe('${self:custom.prefix}');
    expect(r.GreeterQueue.Properties.QueueName).toBe('${self:custom.prefix}-greeter');
    expect(r.GreeterDeadLetterQueue.Properties.QueueName).toBe(
      '${self:custom.prefix}-greeter-dead-letter',
    );
    expect(r.RepliesQueue.Properties.QueueName).toBe('${self:custom.prefix}-replies');
    // With osls's prefix resolved, the names are the topology's.
    const names = example.names('dev');
    const aws = awsNames(example, 'dev');
    expect(aws.topic).toBe(names.topic);
    expect(aws.replies).toBe(names.replies);
    expect(aws.stack).toBe('cloudmom-examples-dev');
    for (const s of example.services) {
      expect(aws.services[s.name]).toEqual({
        queue: names.services[s.name]!.queue,
        deadLetter: names.services[s.name]!.deadLetter,
        function: `cloudmom-examples-dev-${s.name}`,
        logGroup: `/aws/lambda/cloudmom-examples-dev-${s.name}`,
      });
    }
  });

  it('queues: SSE-SQS, retention, visibility ≥ 6 × timeout + window, redrive after maxDeliveries', () => {
    const queues = ofType(doc, 'AWS::SQS::Queue');
    expect(queues.map(([id]) => id)).toEqual([
      'GreeterQueue',
      'GreeterDeadLetterQueue',
      'WorkerQueue',
      'WorkerDeadLetterQueue',
      'RepliesQueue',
    ]);
    for (const [, q] of queues) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const r = doc.resources.Resources;
    expect(r.GreeterQueue.Properties).toMatchObject({
      MessageRetentionPeriod: 4 * 86_400,
      VisibilityTimeout: 90,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': ['GreeterDeadLetterQueue', 'Arn'] },
        maxReceiveCount: 5,
      },
    });
    expect(r.GreeterDeadLetterQueue.Properties.MessageRetentionPeriod).toBe(14 * 86_400);
    expect(r.GreeterDeadLetterQueue.Properties.RedrivePolicy).toBeUndefined();
    expect(r.RepliesQueue.Properties.MessageRetentionPeriod).toBe(3600);
    expect(r.EventsTopic.Properties).toEqual({
      TopicName: '${self:custom.prefix}',
      KmsMasterKeyId: 'alias/aws/sns',
    });
  });

  it('subscriptions filter on the targets, raw; queue policies let only the topic send', () => {
    const subs = ofType(doc, 'AWS::SNS::Subscription');
    expect(
      Object.fromEntries(subs.map(([id, s]) => [id, s.Properties.FilterPolicy.target])),
    ).toEqual({ GreeterSubscription: ['hello', 'sum'], WorkerSubscription: ['audit', 'flaky'] });
    for (const [, s] of subs)
      expect(s.Properties).toMatchObject({
        TopicArn: { Ref: 'EventsTopic' },
        Protocol: 'sqs',
        RawMessageDelivery: true,
        FilterPolicyScope: 'MessageAttributes',
      });
    const policy = doc.resources.Resources.WorkerQueuePolicy.Properties;
    expect(policy.Queues).toEqual([{ Ref: 'WorkerQueue' }]);
    expect(policy.PolicyDocument.Statement).toEqual([
      {
        Sid: 'EventsTopicDelivers',
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: { 'Fn::GetAtt': ['WorkerQueue', 'Arn'] },
        Condition: { ArnEquals: { 'aws:SourceArn': { Ref: 'EventsTopic' } } },
      },
    ]);
  });

  it('one role per function: its queue, its dead letters, replies only if it replies, its log group', () => {
    const consume = [
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:ReceiveMessage',
    ];
    const send = ['sqs:GetQueueUrl', 'sqs:SendMessage'];
    const logs = ['logs:CreateLogStream', 'logs:PutLogEvents'];
    const r = doc.resources.Resources;
    expect(grants(r.GreeterRole)).toEqual({
      GreeterQueue: consume,
      GreeterDeadLetterQueue: send,
      RepliesQueue: send,
      GreeterLogGroup: logs,
    });
    expect(grants(r.WorkerRole)).toEqual({
      WorkerQueue: consume,
      WorkerDeadLetterQueue: send,
      WorkerLogGroup: logs,
    });
    expect(r.GreeterRole.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Service: 'lambda.amazonaws.com' },
        Action: 'sts:AssumeRole',
      },
    ]);
  });

  it('outputs the topic and every queue', () => {
    expect(doc.resources.Outputs).toEqual({
      EventsTopicArn: { Value: { Ref: 'EventsTopic' } },
      GreeterQueueUrl: { Value: { Ref: 'GreeterQueue' } },
      GreeterDeadLetterQueueUrl: { Value: { Ref: 'GreeterDeadLetterQueue' } },
      WorkerQueueUrl: { Value: { Ref: 'WorkerQueue' } },
      WorkerDeadLetterQueueUrl: { Value: { Ref: 'WorkerDeadLetterQueue' } },
      RepliesQueueUrl: { Value: { Ref: 'RepliesQueue' } },
    });
  });

  it('works without options (the defaults)', () => {
    const d = render(example, {});
    expect(d.package).toBeUndefined();
    expect(d.functions.greeter.handler).toBe('handler.handler');
    expect(d.provider.stage).toBe("${opt:stage, 'dev'}");
    expect(generateAws(example)[0]!.content).toContain('run `npx cloudmom infra aws`');
  });
});

describe('generateAws: other topologies', () => {
  it('an ordered topology: FIFO topic and queues, no batching window, awsNames with .fifo', () => {
    const t = defineTopology({
      name: 'ledger',
      defaults: { timeoutSeconds: 20 },
      services: {
        posts: { targets: ['entry.posted'], ordered: true },
        audit: { targets: ['entry.audited'], ordered: true, lockSeconds: 300 },
      },
    });
    const doc = render(t, {});
    const r = doc.resources.Resources;
    expect(r.EventsTopic.Properties).toMatchObject({
      TopicName: '${self:custom.prefix}.fifo',
      FifoTopic: true,
    });
    expect(r.PostsQueue.Properties).toMatchObject({
      QueueName: '${self:custom.prefix}-posts.fifo',
      FifoQueue: true,
      // 6 × 20 s, no batching window on FIFO: 120.
      VisibilityTimeout: 120,
    });
    expect(r.AuditQueue.Properties.VisibilityTimeout).toBe(300);
    expect(r.PostsDeadLetterQueue.Properties).toMatchObject({
      QueueName: '${self:custom.prefix}-posts-dead-letter.fifo',
      FifoQueue: true,
    });
    // The reply queue stays standard (replies need no order).
    expect(r.RepliesQueue.Properties.QueueName).toBe('${self:custom.prefix}-replies');
    expect(r.RepliesQueue.Properties.FifoQueue).toBeUndefined();
    for (const f of Object.values(doc.functions) as Json[])
      expect(f.events[0].sqs.maximumBatchingWindow).toBeUndefined();
    expect(awsNames(t, 'prod')).toEqual({
      stack: 'ledger-prod',
      topic: 'ledger-prod.fifo',
      replies: 'ledger-prod-replies',
      services: {
        posts: {
          queue: 'ledger-prod-posts.fifo',
          deadLetter: 'ledger-prod-posts-dead-letter.fifo',
          function: 'ledger-prod-posts',
          logGroup: '/aws/lambda/ledger-prod-posts',
        },
        audit: {
          queue: 'ledger-prod-audit.fifo',
          deadLetter: 'ledger-prod-audit-dead-letter.fifo',
          function: 'ledger-prod-audit',
          logGroup: '/aws/lambda/ledger-prod-audit',
        },
      },
    });
  });

  it('refuses ordered and unordered services behind one topic, naming the fix', () => {
    const t = defineTopology({
      name: 'mixed',
      services: { a: { targets: ['x'], ordered: true }, b: { targets: ['y'] } },
    });
    refused(
      t,
      {},
      /ordered services \("a"\) and unordered ones \("b"\) cannot share one SNS topic.*make every service ordered, or put the ordered ones in a topology of their own/,
    );
  });

  it('replies: false: no reply queue, no reply grant or address anywhere', () => {
    const t = defineTopology({
      name: 'sink',
      replies: false,
      services: { ingest: { targets: ['row'] }, archive: { targets: ['file'] } },
    });
    const doc = render(t, {});
    const r = doc.resources.Resources;
    expect(r.RepliesQueue).toBeUndefined();
    expect(doc.resources.Outputs.RepliesQueueUrl).toBeUndefined();
    expect(JSON.stringify(doc)).not.toContain('Replies');
    for (const f of Object.values(doc.functions) as Json[])
      expect(f.environment.CLOUDMOM_REPLY_ALLOW_LIST).toBe('');
    expect(Object.keys(grants(r.IngestRole))).toEqual([
      'IngestQueue',
      'IngestDeadLetterQueue',
      'IngestLogGroup',
    ]);
    expect(awsNames(t, 'dev').replies).toBeUndefined();
  });

  it('three services, one hyphenated: osls logical ids, per-service settings', () => {
    const t = defineTopology(shop);
    const doc = render(t, {});
    // osls's own naming of the function (and so of its log group), which the roles reference.
    const naming = createRequire(import.meta.url)('osls/lib/plugins/aws/lib/naming.js');
    const osls = naming.getNormalizedFunctionName.bind(naming);
    expect(osls('order-sync')).toBe('OrderDashsync');
    const r = doc.resources.Resources;
    for (const s of t.services) {
      const id = osls(s.name);
      expect(r[`${id}Queue`].Type).toBe('AWS::SQS::Queue');
      expect(r[`${id}Role`].Properties.Policies[0].PolicyName).toBe(s.name);
      expect(grants(r[`${id}Role`])[`${id}LogGroup`]).toBeDefined();
    }
    expect(r.OrderDashsyncQueue.Properties.VisibilityTimeout).toBe(210); // 6 × 30 + 1 → 210
    expect(r.BillingQueue.Properties.VisibilityTimeout).toBe(600); // lockSeconds
    expect(r.BillingQueue.Properties.RedrivePolicy.maxReceiveCount).toBe(3);
    expect(doc.functions.billing.environment.CLOUDMOM_MAX_DELIVERIES).toBe('3');
    // concurrency 1 → the mapping's minimum, 2; the broker still runs one at a time.
    expect(doc.functions.mailer.events[0].sqs.maximumConcurrency).toBe(2);
    expect(doc.functions.mailer.environment.CLOUDMOM_CONCURRENCY).toBe('1');
    expect(doc.functions.mailer.events[0].sqs.batchSize).toBe(5);
    expect(doc.functions['order-sync'].timeout).toBe(30);
    expect(r.OrderDashsyncSubscription.Properties.FilterPolicy).toEqual({
      target: ['order.created', 'order.cancelled'],
    });
  });

  it('descriptions over several lines stay comments', () => {
    const t = defineTopology({
      ...shop,
      description: 'Line one\n# not: yaml\nline three',
      services: { ...shop.services, mailer: { targets: ['m'], description: 'a\nb: c' } },
    });
    const text = generateAws(t, {})[0]!.content;
    expect(text).toContain('# Line one # not: yaml line three');
    expect(text).toContain('# a b: c');
    expect(parse(text).service).toBe('shop');
  });

  it('extra reply destinations: allowed and granted to replying services', () => {
    const t = defineTopology({
      ...shop,
      replyAllowList: [
        'partner-inbox',
        'https://sqs.eu-west-1.amazonaws.com/123456789012/audit-replies',
        'arn:aws:sqs:eu-west-1:123456789012:ops',
      ],
    });
    const doc = render(t, {});
    const allow = doc.functions.billing.environment.CLOUDMOM_REPLY_ALLOW_LIST['Fn::Join'];
    expect(allow[1].slice(2)).toEqual([
      'partner-inbox',
      'https://sqs.eu-west-1.amazonaws.com/123456789012/audit-replies',
      'arn:aws:sqs:eu-west-1:123456789012:ops',
    ]);
    const granted = grants(doc.resources.Resources.BillingRole);
    const sub = (name: string) =>
      `arn:\${AWS::Partition}:sqs:\${AWS::Region}:\${AWS::AccountId}:${name}`;
    expect(granted[sub('partner-inbox')]).toEqual(['sqs:GetQueueUrl', 'sqs:SendMessage']);
    expect(granted[sub('audit-replies')]).toEqual(['sqs:GetQueueUrl', 'sqs:SendMessage']);
    expect(granted['arn:aws:sqs:eu-west-1:123456789012:ops']).toBeDefined();
    // mailer is one-way: none of them.
    expect(doc.functions.mailer.environment.CLOUDMOM_REPLY_ALLOW_LIST).toBe('');
    expect(Object.keys(grants(doc.resources.Resources.MailerRole))).toHaveLength(3);
  });
});

describe('generateAws: options', () => {
  const t = defineTopology(shop);

  it('per-function handler, memory and concurrency; extra environment; other region and stage', () => {
    const doc = render(t, {
      handler: 'dist/main.handler',
      region: 'eu-west-1',
      stage: 'prod',
      runtime: 'nodejs20.x',
      architecture: 'x86_64',
      logRetentionInDays: 30,
      logLevel: 'info',
      environment: { FEATURE_FLAGS: 'a,b', EMPTY: '' },
      functions: {
        mailer: { handler: 'dist/mailer.handler', memorySize: 1024, maximumConcurrency: 50 },
      },
    });
    expect(doc.provider).toMatchObject({
      runtime: 'nodejs20.x',
      architecture: 'x86_64',
      region: "${opt:region, 'eu-west-1'}",
      stage: "${opt:stage, 'prod'}",
      logRetentionInDays: 30,
      environment: { CLOUDMOM_LOG_LEVEL: 'info', FEATURE_FLAGS: 'a,b', EMPTY: '' },
    });
    expect(doc.functions.mailer).toMatchObject({
      handler: 'dist/mailer.handler',
      memorySize: 1024,
    });
    expect(doc.functions.mailer.events[0].sqs.maximumConcurrency).toBe(50);
    expect(doc.functions.billing.handler).toBe('dist/main.handler');
    expect(doc.functions.billing.memorySize).toBeUndefined();
  });

  it('a batching window of 0 counts in the visibility timeout; batches above 10 need one', () => {
    const doc = render(defineTopology({ name: 'fast', services: { s: { targets: ['t'] } } }), {
      batchingWindowSeconds: 0,
    });
    expect(doc.functions.s.events[0].sqs.maximumBatchingWindow).toBe(0);
    expect(doc.resources.Resources.SQueue.Properties.VisibilityTimeout).toBe(60);
    const big = defineTopology({
      name: 'bulk',
      services: { s: { targets: ['t'], batchSize: 50 } },
    });
    expect(render(big, {}).functions.s.events[0].sqs.batchSize).toBe(50);
    refused(
      big,
      { batchingWindowSeconds: 0 },
      /batchSize 50: above 10 Lambda needs a batching window/,
    );
  });

  it.each([
    [{ nope: 1 }, /unknown option "nope"/],
    [{ functions: { nobody: {} } }, /has no service "nobody"/],
    [{ functions: { mailer: { timeout: 3 } } }, /functions.mailer: unknown option "timeout"/],
    [
      { functions: { mailer: { maximumConcurrency: 1 } } },
      /maximumConcurrency 1 must be an integer from 2 to 1000/,
    ],
    [
      { environment: { CLOUDMOM_QUEUE_URL: 'x' } },
      /CLOUDMOM_QUEUE_URL is generated from the topology/,
    ],
    [{ environment: { 'bad-name': 'x' } }, /"bad-name" is not a variable name/],
    [{ runtime: 'python3.12' }, /not a Node.js runtime/],
    [{ architecture: 'mips' }, /architecture must be arm64 or x86_64/],
    [{ memorySize: 64 }, /memorySize 64 must be an integer from 128 to 10240/],
    [{ logRetentionInDays: 2 }, /logRetentionInDays 2 is not one CloudWatch accepts/],
    [{ logLevel: 'loud' }, /logLevel must be one of/],
    [{ region: 'Europe' }, /region "Europe" is not a region/],
    [{ stage: 'Prod' }, /stage/],
    [{ handler: '' }, /handler must be a non-empty one-line string/],
    [{ package: { patterns: 'dist/**' } }, /package.patterns must be an array/],
    [{ package: { include: [] } }, /package: unknown option "include"/],
  ])('refuses %j', (options, message) => {
    refused(t, options, message);
  });

  it('refuses a FIFO batch above 10, a filter past 150 targets, names past AWS limits', () => {
    refused(
      defineTopology({
        name: 'ord',
        services: { s: { targets: ['t'], ordered: true, batchSize: 20 } },
      }),
      {},
      /ordered with batchSize 20, but Lambda reads FIFO queues in batches of at most 10/,
    );
    const many = Array.from({ length: 151 }, (_, i) => `t${i}`);
    refused(
      defineTopology({ name: 'wide', services: { s: { targets: many } } }),
      {},
      /151 targets, but an SNS filter policy takes at most 150 values; split the service/,
    );
    // 32 + 24 characters: a Lambda function name (64) leaves 6 for the stage.
    const long = defineTopology({
      name: 'a'.repeat(32),
      services: { ['b'.repeat(24)]: { targets: ['t'] } },
    });
    expect(generateAws(long, { stage: 'prod' })[0]!.content).toContain(
      'Stage names of up to\n# 6 characters',
    );
    refused(long, { stage: 'staging' }, /with stage "staging" a name would pass AWS's limits/);
  });
});

describe('the YAML writer', () => {
  it('quotes what YAML would read as something else, and round-trips', () => {
    const tricky: YamlMap = {
      yes: 'no',
      on: 'off',
      date: '2012-10-17',
      number: '5',
      empty: '',
      colon: 'a: b',
      hash: 'a #b',
      star: '!**',
      variable: "${opt:stage, 'dev'}",
      unicode: 'cloudmom — λ',
      newline: 'one\ntwo',
      'key with space': 1.5,
      list: ['a:b', 'plain', 3, true],
      nested: [['x', 'y'], [{ k: 'v', w: ['z'] }], []],
      emptyMap: {},
    };
    const text = toYaml(tricky);
    expect(parse(text)).toEqual(tricky);
    expect(text).toContain('date: "2012-10-17"');
    expect(text).toContain('"yes": "no"');
  });
});
