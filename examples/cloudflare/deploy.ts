/**
 * The example app's Cloudflare deploy options: `npm run infra` generates
 * `infra/cloudflare/wrangler.toml` from `examples/topology.ts` with them.
 *
 * @example
 * ```ts
 * import { generateCloudflare } from 'cloudmom/infra';
 * generateCloudflare(topology, deploy);
 * ```
 * @module
 */
import type { CloudflareInfraOptions } from 'cloudmom/infra';

/** The example Worker (relative to infra/cloudflare), no compatibility flag. */
export const deploy: CloudflareInfraOptions = {
  main: '../../examples/cloudflare/worker.ts',
  compatibilityDate: '2026-04-01',
};
