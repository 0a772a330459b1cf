/**
 * The CLI's argument handling and its commands run in-process against the embedded broker
 * (memory:// queues live in MemoryHub.default, shared with this test): publish, publish
 * --lines, tail, dlq list/show/redrive (with the attributes kept and the dead-letter ones
 * dropped), dry run, exit codes and JSON output.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { MemoryBroker, MemoryHub, type Properties } from 'cloudmom';
import { describe, expect, it } from 'vitest';
import { EXIT, parseCommandLine, UsageError } from '../../src/cli/args.ts';
import { run } from '../../src/cli/run.ts';

function io(stdin = '') {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) => {
    const s = new PassThrough();
    s.on('data', (c: Buffer) => into.push(c.toString()));
    return s;
  };
  return {
    io: { stdout: sink(out), stderr: sink(err), stdin: Readable.from([Buffer.from(stdin)]) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

const uid = () => globalThis.crypto.randomUUID().slice(0, 8);

describe('parseCommandLine', () => {
  it('reads commands, positionals and flags', () => {
    const p = parseCommandLine([
      'publish',
      'sqs://orders',
      'order.created',
      '{"id":1}',
      '-H',
      'a=1',
      '--header',
      'b=2',
      '--json',
    ]);
    expect(p.command).toBe('publish');
    expect(p.args).toEqual({ url: 'sqs://orders', target: 'order.created', body: '{"id":1}' });
    expect(p.flags.header).toEqual(['a=1', 'b=2']);
    expect(p.flags.json).toBe(true);
  });

  it('answers help for no command, --help, help <command> and <command> --help', () => {
    expect(parseCommandLine([]).command).toBe('help');
    expect(parseCommandLine(['--help']).command).toBe('help');
    expect(parseCommandLine(['help', 'dlq'])).toMatchObject({ command: 'help', topic: 'dlq' });
    expect(parseCommandLine(['tail', '--help'])).toMatchObject({ command: 'help', topic: 'tail' });
  });

  it('refuses unknown commands and flags, missing and extra arguments, as usage errors', () => {
    expect(() => parseCommandLine(['pubish'])).toThrow(/unknown command "pubish"/);
    expect(() => parseCommandLine(['tail', 'memory://', '--bodys'])).toThrow(UsageError);
    expect(() => parseCommandLine(['publish', 'memory://'])).toThrow(/needs <target>/);
    expect(() => parseCommandLine(['tail', 'memory://', 'extra'])).toThrow(/too many/);
  });
});

describe('cloudmom (in process, memory://)', () => {
  it('prints help with an example for every command, exit 0', async () => {
    for (const c of ['publish', 'request', 'tail', 'dlq']) {
      const t = io();
      expect(await run(['help', c], t.io)).toBe(EXIT.ok);
      expect(t.out()).toMatch(/Example:\n\s+cloudmom /);
    }
    const t = io();
    expect(await run(['--help'], t.io)).toBe(EXIT.ok);
    expect(t.out()).toMatch(/Exit codes: 0 done, 1 failed, 2 usage/);
  });

  it('exits 2 with the fix named on a bad URL or flag, JSON on stderr with --json', async () => {
    const t = io();
    expect(await run(['publish', 'sqs://q?regoin=x', 't', '1'], t.io)).toBe(EXIT.usage);
    expect(t.err()).toMatch(/valid: .*region/);
    const j = io();
    expect(await run(['tail', 'memory://', '--max', 'zero', '--json'], j.io)).toBe(EXIT.usage);
    expect(JSON.parse(j.err())).toMatchObject({ code: 'usage', exitCode: 2 });
  });

  it('publishes one body (JSON, text, stdin, @file) with its options', async () => {
    const q = `cli-pub-${uid()}`;
    const t = io('from stdin');
    expect(
      await run(['publish', `memory://${q}`, 'a', '{"n":1}', '-H', 'k=v', '--json'], t.io),
    ).toBe(0);
    expect(JSON.parse(t.out()).messageId).toMatch(/-/);
    expect(await run(['publish', `memory://${q}`, 'b', '-', '--correlation-id', 'c1'], t.io)).toBe(
      0,
    );
    expect(await run(['publish', `memory://${q}`, 'c', '42', '--text'], t.io)).toBe(0);
    const file = join(mkdtempSync(join(tmpdir(), 'cli-')), 'body.json');
    writeFileSync(file, '[1,2]');
    expect(await run(['publish', `memory://${q}`, 'd', `@${file}`], t.io)).toBe(0);
    const got: [string, unknown, Properties][] = [];
    const broker = new MemoryBroker({ queue: q, logger: false });
    for (const target of ['a', 'b', 'c', 'd'])
      broker.add(target, (p, b) => void got.push([target, b, p]));
    await broker.start();
    await expect.poll(() => got.length).toBe(4);
    await broker.stop();
    const byTarget = Object.fromEntries(got.map(([t0, b, p]) => [t0, { b, p }]));
    expect(byTarget.a!.b).toEqual({ n: 1 });
    expect(byTarget.a!.p.headers).toEqual({ k: 'v' });
    expect(byTarget.b!.b).toBe('from stdin');
    expect(byTarget.b!.p.correlationId).toBe('c1');
    expect(byTarget.c!.b).toBe('42');
    expect(byTarget.d!.b).toEqual([1, 2]);
  });

  it('publishes JSON lines, counting and naming the lines that fail, exit 1', async () => {
    const q = `cli-lines-${uid()}`;
    const t = io('{"i":1}\n{"i":2}\nnot json\n\n{"i":4}\n');
    expect(await run(['publish', `memory://${q}`, 't', '-', '--lines', '--json'], t.io)).toBe(
      EXIT.failed,
    );
    const summary = JSON.parse(t.out());
    expect(summary).toMatchObject({ published: 3, failed: 1 });
    expect(summary.failures).toEqual([{ line: 3, error: expect.stringMatching(/not JSON/) }]);
    expect(MemoryHub.default.queue(q).depth).toBe(3);
  });

  it('tails: one line per message, bodies only when asked, --max and --target', async () => {
    const q = `cli-tail-${uid()}`;
    const pub = new MemoryBroker({ queue: q, logger: false });
    await pub.publish({ secret: 'pw' }, 'a', { headers: { tenant: 'acme' } });
    await pub.publish('x', 'b');
    await pub.publish('y', 'a');
    const t = io();
    expect(await run(['tail', `memory://${q}`, '--target', 'a', '--max', '2'], t.io)).toBe(0);
    const lines = t.out().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ a {2}id=.* headers=tenant/);
    expect(t.out()).not.toContain('pw');
    expect(t.out()).not.toContain('acme');
    // the b message was given back, not consumed
    expect(MemoryHub.default.queue(q).depth).toBe(1);
    await pub.publish({ secret: 'pw' }, 'a', { headers: { tenant: 'acme' } });
    const j = io();
    expect(await run(['tail', `memory://${q}`, '--bodies', '--json', '--idle', '1'], j.io)).toBe(0);
    const seen = j
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(seen.map((s) => s.target).sort()).toEqual(['a', 'b']);
    expect(seen.find((s) => s.target === 'a')).toMatchObject({
      body: { secret: 'pw' },
      headers: { tenant: 'acme' },
    });
    await pub.stop();
  });

  it('lists, shows, dry-runs and redrives dead letters with their attributes', async () => {
    const q = `cli-dlq-${uid()}`;
    let failing = true;
    const handled: Properties[] = [];
    const broker = new MemoryBroker({ queue: q, maxDeliveries: 1, logger: false });
    broker.add('work', (p) => {
      if (failing) throw new Error('boom');
      handled.push(p);
    });
    await broker.start();
    for (let i = 0; i < 25; i++)
      await broker.publish({ i }, 'work', {
        correlationId: `c-${i}`,
        replyTo: 'reply.x',
        headers: { tenant: 't1' },
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        // FIFO: only the oldest dead letter of a group can be read at a time, so few groups
        ...(i === 7 ? { groupKey: 'g-1' } : {}),
      });
    const dlq = MemoryHub.default.queue(`${q}.dlq`);
    await expect.poll(() => dlq.depth).toBe(25);

    const list = io();
    expect(await run(['dlq', 'list', `memory://${q}`, '--json', '--max', '10'], list.io)).toBe(0);
    const listed = list
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(listed).toHaveLength(10);
    expect(listed[0]).toMatchObject({ target: 'work', reason: 'handler-failed', origin: q });
    expect(listed[0].headers.sort()).toEqual(['tenant', 'traceparent']);
    expect(dlq.depth).toBe(25); // given back

    const show = io();
    const id = listed[3].messageId as string;
    expect(await run(['dlq', 'show', `memory://${q}`, id], show.io)).toBe(0);
    expect(show.out()).toContain(`messageId:     ${id}`);
    expect(show.out()).toMatch(/body: +\{"i":\d+\}/);
    const missing = io();
    expect(await run(['dlq', 'show', `memory://${q}`, 'nope'], missing.io)).toBe(EXIT.failed);

    const dry = io();
    expect(await run(['dlq', 'redrive', `memory://${q}`, '--dry-run', '--json'], dry.io)).toBe(0);
    expect(JSON.parse(dry.out()), dry.out() + dry.err()).toMatchObject({
      wouldMove: 25,
      moved: 0,
      dryRun: true,
    });
    expect(dlq.depth).toBe(25);

    failing = false;
    const some = io();
    expect(await run(['dlq', 'redrive', `memory://${q}`, '--max', '5', '--json'], some.io)).toBe(0);
    expect(JSON.parse(some.out())).toMatchObject({ moved: 5, failed: 0 });
    const rest = io();
    expect(await run(['dlq', 'redrive', `memory://${q}`], rest.io)).toBe(0);
    expect(rest.out()).toMatch(/moved 20, failed 0/);
    await expect.poll(() => handled.length).toBe(25);
    expect(dlq.depth).toBe(0);
    const p = handled.find((h) => h.correlationId === 'c-7')!;
    expect(p).toMatchObject({ target: 'work', replyTo: 'reply.x', groupKey: 'g-1' });
    expect(p.headers).toEqual({
      tenant: 't1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    await broker.stop();
  });
});

describe('cloudmom infra / asyncapi / dev (the topology commands, in process)', () => {
  const topologyFile = 'examples/topology.ts';

  it('writes a platform IaC as the generator gives it (the committed file)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cli-infra-'));
    const t = io();
    expect(
      await run(['infra', 'kafka', '--topology', topologyFile, '--out', out, '--json'], t.io),
    ).toBe(0);
    const [file] = JSON.parse(t.out()).files;
    expect(file.path).toBe(join(out, 'topics.json'));
    expect(readFileSync(file.path, 'utf8')).toBe(readFileSync('infra/kafka/topics.json', 'utf8'));
    const bad = io();
    expect(await run(['infra', 'heroku', '--topology', topologyFile], bad.io)).toBe(EXIT.usage);
    expect(bad.err()).toMatch(/platforms: aws, azure/);
    const none = io();
    expect(await run(['infra', 'aws', '--topology', 'no/such.ts'], none.io)).toBe(EXIT.usage);
    expect(none.err()).toMatch(/cannot load the topology module/);
  });

  it('writes the AsyncAPI document', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cli-asyncapi-'));
    expect(await run(['asyncapi', '--topology', topologyFile, '--out', out], io().io)).toBe(0);
    const doc = JSON.parse(readFileSync(join(out, 'asyncapi.json'), 'utf8'));
    expect(doc.asyncapi).toMatch(/^3\./);
    expect(Object.keys(doc.channels).length).toBeGreaterThanOrEqual(4);
  });

  it('runs the handlers on the embedded broker: replies, one-way, dead letters', async () => {
    const t = io('hello "Ada"\nsum {"numbers":[1,2,3]}\naudit {"a":1}\nflaky 1\nnope 1\n');
    const code = await run(
      ['dev', '--topology', topologyFile, '--handlers', 'examples/app.ts', '--json'],
      t.io,
    );
    expect(code, t.err()).toBe(0);
    const events = t
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events[0]).toEqual({ event: 'started', services: ['greeter', 'worker'] });
    expect(events).toContainEqual({ event: 'reply', target: 'hello', body: 'Hi there too' });
    expect(events).toContainEqual({ event: 'reply', target: 'sum', body: { sum: 6 } });
    expect(events).toContainEqual(expect.objectContaining({ event: 'published', target: 'audit' }));
    expect(events).toContainEqual(
      expect.objectContaining({
        event: 'dead-lettered',
        target: 'flaky',
        reason: 'handler-failed',
        deliveryCount: 5,
      }),
    );
    expect(events).toContainEqual(expect.objectContaining({ event: 'error', target: 'nope' }));
  });
});
