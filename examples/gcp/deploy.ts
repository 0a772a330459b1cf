/**
 * The example app's Google Cloud deploy options: what `npm run infra` passes to `generateGcp`
 * with `examples/topology.ts` to write `infra/gcp/*.tf`. Every service is a function behind a
 * push subscription; its entry point is the service name (`examples/gcp/index.ts`).
 *
 * @example
 * ```ts
 * import { generateGcp } from 'cloudmom/infra';
 * const files = generateGcp(topology, deploy);
 * ```
 * @module
 */
import type { GcpOptions } from 'cloudmom/infra';

/** The generator options of the example app (no stage: the names of `topology.names()`). */
export const deploy: GcpOptions = { maxInstances: 10, memory: '256M' };
