/**
 * Range checks of a Wrangler configuration's queues — what `wrangler deploy` lets through with
 * at most a warning (an unknown key, `max_batch_size = 500`, `max_retries = 1000`) and the
 * platform refuses or silently clamps, plus the rules cloudmom relies on.
 *
 * The example's wrangler.toml is generated from the topology (`generateCloudflare` in
 * `cloudmom/infra`, `npm run infra`); these checks run on it in test/cloudflare/iac.test.ts.
 *
 * Limits: https://developers.cloudflare.com/queues/platform/limits/ and the consumer settings of
 * https://developers.cloudflare.com/queues/configuration/configure-queues/.
 *
 * ```sh
 * node --conditions=source infra/cloudflare/check.ts infra/cloudflare/wrangler.toml [maxDeliveries]
 * ```
 *
 * @example
 * ```ts
 * import { experimental_readRawConfig } from 'wrangler';
 * const { rawConfig } = experimental_readRawConfig({ config: 'infra/cloudflare/wrangler.toml' });
 * const problems = checkQueues(rawConfig, { maxDeliveries: 5 }); // [] when all is well
 * ```
 * @module
 */

/** The `queues` part of a Wrangler configuration, as written (snake_case). */
export interface QueuesConfig {
  readonly queues?: {
    readonly producers?: readonly Record<string, unknown>[];
    readonly consumers?: readonly Record<string, unknown>[];
  };
  /** Environments (`[env.<name>]`): each a Worker of its own, with its own queues. */
  readonly env?: Readonly<Record<string, QueuesConfig>>;
}

/** Consumer settings: allowed range, inclusive; `integer` where fractions are refused. */
const CONSUMER_RANGES: Readonly<Record<string, { min: number; max: number; integer: boolean }>> = {
  max_batch_size: { min: 1, max: 100, integer: true },
  max_batch_timeout: { min: 0, max: 60, integer: false },
  max_retries: { min: 0, max: 100, integer: true },
  retry_delay: { min: 0, max: 43_200, integer: true },
  max_concurrency: { min: 1, max: 250, integer: true },
  visibility_timeout_ms: { min: 0, max: 43_200_000, integer: true },
};
const CONSUMER_KEYS = new Set([
  'queue',
  'type',
  'dead_letter_queue',
  ...Object.keys(CONSUMER_RANGES),
]);
const PRODUCER_KEYS = new Set(['queue', 'binding', 'delivery_delay']);
/** Queue names: lowercase letters, digits and dashes, at most 63. */
const QUEUE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A binding becomes a property of `env`: a JavaScript identifier. */
const BINDING = /^[A-Za-z_$][\w$]*$/;

/**
 * Problems of the configuration's queues (empty when none): unknown keys, values out of range,
 * bad names, a consumer's dead-letter queue without a producer binding (cloudmom copies dead
 * letters through one), and — given the broker's `maxDeliveries` — a `max_retries` too small
 * for cloudmom to dead-letter with a reason before the queue does.
 */
export function checkQueues(
  config: QueuesConfig,
  options: { maxDeliveries?: number } = {},
): string[] {
  const problems: string[] = [];
  const producers = config.queues?.producers ?? [];
  const consumers = config.queues?.consumers ?? [];
  const produced = new Set<string>();
  const bindings = new Set<string>();
  producers.forEach((p, i) => {
    const where = `queues.producers[${i}]`;
    for (const k of Object.keys(p))
      if (!PRODUCER_KEYS.has(k)) problems.push(`${where}: unknown key "${k}"`);
    if (typeof p.queue !== 'string' || !QUEUE_NAME.test(p.queue))
      problems.push(
        `${where}.queue: ${JSON.stringify(p.queue)} is not a queue name (a-z, 0-9, "-", ≤ 63)`,
      );
    else produced.add(p.queue);
    if (typeof p.binding !== 'string' || !BINDING.test(p.binding))
      problems.push(
        `${where}.binding: ${JSON.stringify(p.binding)} is not a JavaScript identifier`,
      );
    else if (bindings.has(p.binding))
      problems.push(`${where}.binding: "${p.binding}" is bound twice`);
    else bindings.add(p.binding);
    range(problems, `${where}.delivery_delay`, p.delivery_delay, {
      min: 0,
      max: 43_200,
      integer: true,
    });
  });
  const consumed = new Set<string>();
  consumers.forEach((c, i) => {
    const where = `queues.consumers[${i}]`;
    for (const k of Object.keys(c))
      if (!CONSUMER_KEYS.has(k)) problems.push(`${where}: unknown key "${k}"`);
    if (typeof c.queue !== 'string' || !QUEUE_NAME.test(c.queue))
      problems.push(`${where}.queue: ${JSON.stringify(c.queue)} is not a queue name`);
    else if (consumed.has(c.queue)) problems.push(`${where}.queue: "${c.queue}" has two consumers`);
    else consumed.add(c.queue);
    if (c.type !== undefined && c.type !== 'worker' && c.type !== 'http_pull')
      problems.push(`${where}.type: must be "worker" or "http_pull"`);
    for (const [k, r] of Object.entries(CONSUMER_RANGES)) range(problems, `${where}.${k}`, c[k], r);
    const dlq = c.dead_letter_queue;
    if (dlq !== undefined) {
      if (typeof dlq !== 'string' || !QUEUE_NAME.test(dlq))
        problems.push(`${where}.dead_letter_queue: ${JSON.stringify(dlq)} is not a queue name`);
      else if (dlq === c.queue)
        problems.push(`${where}.dead_letter_queue: a queue cannot be its own dead-letter queue`);
      else if (!produced.has(dlq))
        problems.push(
          `${where}.dead_letter_queue: "${dlq}" has no producer binding; cloudmom sends its dead-letter copies (with the reason) through one`,
        );
    }
    const maxDeliveries = options.maxDeliveries;
    const retries = typeof c.max_retries === 'number' ? c.max_retries : 3; // Cloudflare's default
    if (maxDeliveries !== undefined && retries < maxDeliveries - 1)
      problems.push(
        `${where}.max_retries: ${retries} allows ${retries + 1} deliveries, fewer than the broker's maxDeliveries (${maxDeliveries}): the queue would dead-letter first, without a reason`,
      );
  });
  return problems;
}

/**
 * {@link checkQueues} on the top-level Worker and on every environment (`[env.<name>]`, one
 * Worker each: queues are not inherited), the problems of an environment prefixed with
 * `env.<name>.`.
 *
 * @example
 * ```ts
 * checkConfig(rawConfig, { maxDeliveries: 5 }); // [] when every Worker's queues are sound
 * ```
 */
export function checkConfig(
  config: QueuesConfig,
  options: { maxDeliveries?: number } = {},
): string[] {
  const problems = checkQueues(config, options);
  for (const [name, env] of Object.entries(config.env ?? {}))
    problems.push(...checkQueues(env, options).map((p) => `env.${name}.${p}`));
  return problems;
}

function range(
  problems: string[],
  where: string,
  v: unknown,
  r: { min: number; max: number; integer: boolean },
): void {
  if (v === undefined) return;
  if (
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    (r.integer && !Number.isInteger(v)) ||
    v < r.min ||
    v > r.max
  )
    problems.push(
      `${where}: ${JSON.stringify(v)} is outside ${r.min}–${r.max}${r.integer ? ' (an integer)' : ''}`,
    );
}

// `node infra/cloudflare/check.ts <wrangler.toml> [maxDeliveries]`
if (import.meta.url === `file://${process.argv[1]}`) {
  const [file = 'infra/cloudflare/wrangler.toml', maxDeliveries] = process.argv.slice(2);
  const { experimental_readRawConfig } = await import('wrangler');
  const { rawConfig } = experimental_readRawConfig({ config: file });
  const problems = checkConfig(rawConfig as QueuesConfig, {
    ...(maxDeliveries ? { maxDeliveries: Number(maxDeliveries) } : {}),
  });
  for (const p of problems) console.error(`${file}: ${p}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
