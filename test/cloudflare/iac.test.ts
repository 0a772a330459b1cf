/**
 * infra/cloudflare, validated offline: `wrangler deploy --dry-run` (wrangler from npm) bundles
 * the example Worker with its bindings and refuses wrong types; our own range checks
 * (infra/cloudflare/check.ts) catch what wrangler lets through.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkQueues, type QueuesConfig } from '../../infra/cloudflare/check.ts';
import { ROOT } from '../emulators/harness.ts';

const INFRA = join(ROOT, 'infra/cloudflare');
const CONFIG = readFileSync(join(INFRA, 'wrangler.toml'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'cloudmom-wrangler-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * `wrangler deploy --dry-run` on a copy of the config (so `.wrangler/` lands in a temporary
 * folder), with `main` made absolute; no network, no account, no telemetry.
 */
function dryRun(toml: string, name: string) {
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
        `alias = { "cloudmom/cloudflare" = "${join(ROOT, 'adapters/cloudflare/index.ts')}", "cloudmom" = "${join(ROOT, 'src/index.ts')}" }`,
    ),
  );
  const r = spawnSync(
    join(ROOT, 'node_modules/.bin/wrangler'),
    ['deploy', '--dry-run', '--minify', '--outdir', outdir, '--config', config],
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

describe('infra/cloudflare/wrangler.toml', () => {
  let ok: ReturnType<typeof dryRun>;
  beforeAll(() => {
    ok = dryRun(CONFIG, 'ok');
  }, 180_000);

  it('wrangler deploy --dry-run bundles the example Worker with its three queue bindings', () => {
    expect(ok.status, ok.output).toBe(0);
    expect(ok.output).toMatch(/env\.QUEUE \(cloudmom\)\s+Queue/);
    expect(ok.output).toMatch(/env\.REPLIES \(cloudmom-replies\)\s+Queue/);
    expect(ok.output).toMatch(/env\.DEAD_LETTERS \(cloudmom-dead-letter\)\s+Queue/);
    expect(ok.output).toContain('--dry-run: exiting now');
    expect(ok.output).not.toMatch(/\[WARNING\]/);
    const bundle = readFileSync(join(ok.outdir, 'worker.js'), 'utf8');
    // no nodejs_compat flag, so no node: module may be imported
    expect(bundle).not.toMatch(/from\s*["']node:|import\(\s*["']node:|require\(\s*["']node:/);
    console.log(`wrangler bundle of the example Worker (minified): ${bundle.length} bytes`);
  });

  it('our range checks pass on it, with the example broker’s maxDeliveries (5)', async () => {
    expect(checkQueues(await readRaw(CONFIG, 'ranges'), { maxDeliveries: 5 })).toEqual([]);
  });

  it('wrangler refuses a wrong type (max_batch_size = "ten")', () => {
    const bad = dryRun(CONFIG.replace('max_batch_size = 50', 'max_batch_size = "ten"'), 'type');
    expect(bad.status).not.toBe(0);
    expect(bad.output).toMatch(/max_batch_size/);
  }, 120_000);

  it('wrangler lets out-of-range values and unknown keys through; our checks do not', async () => {
    const toml = CONFIG.replace('max_batch_size = 50', 'max_batch_size = 500').replace(
      'max_retries = 5\ndead_letter_queue = "cloudmom-dead-letter"\nretry_delay = 10\nmax_concurrency = 10',
      'max_retries = 1000\ndead_letter_queue = "cloudmom-dead-letter"\nretry_delay = 50000\nmax_concurrency = 10\nmax_batch_timout = 5',
    );
    expect(toml).not.toBe(CONFIG);
    const wrangler = dryRun(toml, 'ranges-bad');
    expect(wrangler.status, wrangler.output).toBe(0); // only a warning, at most
    const problems = checkQueues(await readRaw(toml, 'ranges-bad'));
    expect(problems).toEqual([
      'queues.consumers[0]: unknown key "max_batch_timout"',
      'queues.consumers[0].max_batch_size: 500 is outside 1–100 (an integer)',
      'queues.consumers[0].max_retries: 1000 is outside 0–100 (an integer)',
      'queues.consumers[0].retry_delay: 50000 is outside 0–43200 (an integer)',
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
