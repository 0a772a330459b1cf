/**
 * infra/cloudflare (generated from examples/topology.ts), validated offline: `wrangler deploy
 * --dry-run` (wrangler from npm) bundles the example Worker with the bindings of each Worker
 * (the front one and one per service, `--env <service>`) and refuses wrong types; our own
 * range checks (infra/cloudflare/check.ts) catch what wrangler lets through.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../../examples/topology.ts';
import { checkConfig, checkQueues, type QueuesConfig } from '../../infra/cloudflare/check.ts';
import { cloudflareBindings } from '../../src/infra/cloudflare.ts';
import { ROOT } from '../emulators/harness.ts';

const INFRA = join(ROOT, 'infra/cloudflare');
const CONFIG = readFileSync(join(INFRA, 'wrangler.toml'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'cloudmom-wrangler-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * `wrangler deploy --dry-run` on a copy of the config (so `.wrangler/` lands in a temporary
 * folder), with `main` made absolute; no network, no account, no telemetry.
 */
function dryRun(toml: string, name: string, env?: string) {
  const dir = join(work, name);
  const outdir = join(dir, 'out');
  const config = join(dir, 'wrangler.toml');
  spawnSync('mkdir', ['-p', dir]);
  writeFileSync(
    config,
    toml.replace(
      /^main = ".*"$/m,
      // the package's own source (an installed package resolves to its built dist/)
      `main = "${join(ROOT, 'examples/cloudflare/worker.ts')}"\n` +
        `alias = { "cloudmom/cloudflare" = "${join(ROOT, 'adapters/cloudflare/index.ts')}", "cloudmom/infra" = "${join(ROOT, 'src/infra/index.ts')}", "cloudmom" = "${join(ROOT, 'src/index.ts')}" }`,
    ),
  );
  const r = spawnSync(
    join(ROOT, 'node_modules/.bin/wrangler'),
    [
      'deploy',
      '--dry-run',
      '--minify',
      '--outdir',
      outdir,
      '--config',
      config,
      ...(env ? ['--env', env] : []),
    ],
    {
      cwd: dir,
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        ...process.env,
        HOME: join(dir, 'home'),
        XDG_CONFIG_HOME: join(dir, 'config'),
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_LOG_PATH: join(dir, 'logs'),
        CLOUDFLARE_API_TOKEN: '',
        CLOUDFLARE_ACCOUNT_ID: '',
      },
    },
  );
  return { status: r.status, output: `${r.stdout}\n${r.stderr}`, outdir };
}

async function readRaw(toml: string, name: string): Promise<QueuesConfig> {
  const file = join(work, `${name}.toml`);
  writeFileSync(file, toml);
  const { experimental_readRawConfig } = await import('wrangler');
  return experimental_readRawConfig({ config: file }).rawConfig as QueuesConfig;
}

const b = cloudflareBindings(topology);
const greeter = b.services.greeter!;
const worker = b.services.worker!;
const binding = (name: string, queue: string) =>
  new RegExp(`env\\.${name} \\(${queue}\\)\\s+Queue`);

describe('infra/cloudflare/wrangler.toml', () => {
  const runs: Record<string, ReturnType<typeof dryRun>> = {};
  beforeAll(() => {
    runs.front = dryRun(CONFIG, 'front');
    runs.greeter = dryRun(CONFIG, 'greeter', 'greeter');
    runs.worker = dryRun(CONFIG, 'worker', 'worker');
  }, 300_000);

  it('names the bindings as cloudflareBindings() does (the Worker reads them so)', () => {
    expect(greeter).toEqual({
      queue: 'cloudmom-examples-greeter',
      binding: 'GREETER_QUEUE',
      deadLetter: 'cloudmom-examples-greeter-dead-letter',
      deadLetterBinding: 'GREETER_DEAD_LETTERS',
    });
    expect(b.replies).toEqual({ queue: 'cloudmom-examples-replies', binding: 'REPLIES' });
  });

  it('wrangler deploy --dry-run bundles the front Worker: every service queue and the replies', () => {
    const ok = runs.front!;
    expect(ok.status, ok.output).toBe(0);
    expect(ok.output).toMatch(binding('GREETER_QUEUE', greeter.queue));
    expect(ok.output).toMatch(binding('WORKER_QUEUE', worker.queue));
    expect(ok.output).toMatch(binding('REPLIES', 'cloudmom-examples-replies'));
    expect(ok.output).not.toMatch(/DEAD_LETTERS/);
    expect(ok.output).toContain('--dry-run: exiting now');
    expect(ok.output).not.toMatch(/\[WARNING\]/);
    const bundle = readFileSync(join(ok.outdir, 'worker.js'), 'utf8');
    // no nodejs_compat flag, so no node: module may be imported
    expect(bundle).not.toMatch(/from\s*["']node:|import\(\s*["']node:|require\(\s*["']node:/);
    console.log(`wrangler bundle of the example Worker (minified): ${bundle.length} bytes`);
  });

  it('--env greeter: its own dead-letter queue and the replies; --env worker: no replies', () => {
    for (const [env, own, replies] of [
      ['greeter', greeter, true],
      ['worker', worker, false],
    ] as const) {
      const ok = runs[env]!;
      expect(ok.status, ok.output).toBe(0);
      expect(ok.output).toMatch(binding('GREETER_QUEUE', greeter.queue));
      expect(ok.output).toMatch(binding('WORKER_QUEUE', worker.queue));
      expect(ok.output).toMatch(binding(own.deadLetterBinding, own.deadLetter));
      expect((ok.output.match(/_DEAD_LETTERS/g) ?? []).length, ok.output).toBe(1);
      expect(binding('REPLIES', 'cloudmom-examples-replies').test(ok.output)).toBe(replies);
      expect(ok.output).not.toMatch(/\[WARNING\]/);
    }
  });

  it('our range checks pass on every Worker, with the example broker’s maxDeliveries (5)', async () => {
    const raw = await readRaw(CONFIG, 'ranges');
    expect(Object.keys(raw.env ?? {})).toEqual(['greeter', 'worker']);
    expect(checkConfig(raw, { maxDeliveries: 5 })).toEqual([]);
    const consumer = raw.env!.greeter!.queues!.consumers![0]!;
    expect(consumer).toEqual({
      queue: greeter.queue,
      max_batch_size: 10,
      max_batch_timeout: 5,
      max_retries: 5,
      dead_letter_queue: greeter.deadLetter,
      retry_delay: 1,
      max_concurrency: 5,
    });
  });

  it('wrangler refuses a wrong type (max_batch_size = "ten")', () => {
    const toml = CONFIG.replace('max_batch_size = 10\n', 'max_batch_size = "ten"\n');
    expect(toml).not.toBe(CONFIG);
    const bad = dryRun(toml, 'type', 'greeter');
    expect(bad.status).not.toBe(0);
    expect(bad.output).toMatch(/max_batch_size/);
  }, 120_000);

  it('wrangler lets out-of-range values and unknown keys through; our checks do not', async () => {
    const toml = CONFIG.replace('max_batch_size = 10\n', 'max_batch_size = 500\n').replace(
      `max_retries = 5\ndead_letter_queue = "${greeter.deadLetter}"\nretry_delay = 1\nmax_concurrency = 5`,
      `max_retries = 1000\ndead_letter_queue = "${greeter.deadLetter}"\nretry_delay = 50000\nmax_concurrency = 5\nmax_batch_timout = 5`,
    );
    expect(toml).not.toBe(CONFIG);
    const wrangler = dryRun(toml, 'ranges-bad', 'greeter');
    expect(wrangler.status, wrangler.output).toBe(0); // only a warning, at most
    const problems = checkConfig(await readRaw(toml, 'ranges-bad'));
    expect(problems).toEqual([
      'env.greeter.queues.consumers[0]: unknown key "max_batch_timout"',
      'env.greeter.queues.consumers[0].max_batch_size: 500 is outside 1–100 (an integer)',
      'env.greeter.queues.consumers[0].max_retries: 1000 is outside 0–100 (an integer)',
      'env.greeter.queues.consumers[0].retry_delay: 50000 is outside 0–43200 (an integer)',
    ]);
  }, 120_000);
});

describe('infra/cloudflare/check.ts rules', () => {
  const base = {
    queues: {
      producers: [
        { binding: 'QUEUE', queue: 'orders' },
        { binding: 'DEAD', queue: 'orders-dlq' },
      ],
      consumers: [{ queue: 'orders', max_retries: 4, dead_letter_queue: 'orders-dlq' }],
    },
  };
  const consumer = (c: Record<string, unknown>) => ({
    queues: { ...base.queues, consumers: [{ ...base.queues.consumers[0], ...c }] },
  });

  it('accepts a sound configuration', () => {
    expect(checkQueues(base, { maxDeliveries: 5 })).toEqual([]);
  });

  it.each([
    [{ max_batch_size: 0 }, /max_batch_size: 0 is outside 1–100/],
    [{ max_batch_size: 2.5 }, /max_batch_size: 2.5 is outside/],
    [{ max_batch_timeout: 61 }, /max_batch_timeout: 61 is outside 0–60/],
    [{ max_retries: -1 }, /max_retries: -1 is outside 0–100/],
    [{ max_concurrency: 251 }, /max_concurrency: 251 is outside 1–250/],
    [{ retry_delay: '10' }, /retry_delay: "10" is outside/],
    [{ type: 'push' }, /type: must be "worker" or "http_pull"/],
    [{ queue: 'Orders_Queue' }, /queue: "Orders_Queue" is not a queue name/],
    [{ dead_letter_queue: 'orders' }, /cannot be its own dead-letter queue/],
    [{ dead_letter_queue: 'elsewhere' }, /"elsewhere" has no producer binding/],
  ])('refuses %j', (c, problem) => {
    const problems = checkQueues(consumer(c));
    expect(
      problems.some((p) => problem.test(p)),
      problems.join('\n'),
    ).toBe(true);
  });

  it('max_retries must leave room for the broker’s maxDeliveries (default 3 when unset)', () => {
    expect(checkQueues(consumer({ max_retries: 3 }), { maxDeliveries: 5 })).toEqual([
      "queues.consumers[0].max_retries: 3 allows 4 deliveries, fewer than the broker's maxDeliveries (5): the queue would dead-letter first, without a reason",
    ]);
    const unset = consumer({});
    delete (unset.queues.consumers[0] as Record<string, unknown>).max_retries;
    expect(checkQueues(unset, { maxDeliveries: 5 })).toHaveLength(1);
  });

  it('producers: identifiers, queue names, no binding twice, delivery_delay ≤ 12 h', () => {
    const problems = checkQueues({
      queues: {
        producers: [
          { binding: 'my-queue', queue: 'a' },
          { binding: 'A', queue: 'a' },
          { binding: 'A', queue: 'b', delivery_delay: 43_201 },
          { binding: 'B', queue: 'x'.repeat(64), extra: 1 },
        ],
      },
    });
    expect(problems).toEqual([
      'queues.producers[0].binding: "my-queue" is not a JavaScript identifier',
      'queues.producers[2].binding: "A" is bound twice',
      'queues.producers[2].delivery_delay: 43201 is outside 0–43200 (an integer)',
      'queues.producers[3]: unknown key "extra"',
      `queues.producers[3].queue: "${'x'.repeat(64)}" is not a queue name (a-z, 0-9, "-", ≤ 63)`,
    ]);
  });
});
