/**
 * The example app's topology (the handlers of `examples/app.ts`): the one description that
 * the IaC under `serverless.yml` and `infra/` and the AsyncAPI document are generated from.
 *
 * - `greeter` serves `hello` (the seed's greeting, answered "Hi there too") and `sum` (an RPC);
 * - `worker` serves `audit` (one-way) and `flaky` (always fails: retried, then dead-lettered).
 *
 * @example
 * ```ts
 * import { SqsBroker } from 'cloudmom/aws';
 * const broker = new SqsBroker({ queue: 'q', ...topology.brokerOptions('greeter', { stage: 'dev' }) });
 * ```
 * @module
 */
import { defineTopology } from 'cloudmom';
// zod/mini: the same schemas as zod's, ~14 KB in a bundle instead of ~450 KB (every example
// Lambda and Worker bundles this file); its JSON Schema comes from z.toJSONSchema (scripts/infra.ts)
import * as z from 'zod/mini';
import { TARGETS } from './app.ts';

/** The example app: two services, a reply destination, five deliveries before dead-lettering. */
export const topology = defineTopology({
  name: 'cloudmom-examples',
  description: 'The cloudmom example app: a greeter that answers, a worker that audits.',
  defaults: { maxDeliveries: 5, timeoutSeconds: 10, batchSize: 10, concurrency: 5 },
  services: {
    greeter: {
      description: 'Answers greetings and sums numbers.',
      targets: {
        [TARGETS.hello]: { description: 'A greeting; the reply is "Hi there too".' },
        [TARGETS.sum]: {
          description: 'Numbers to add; the reply is their sum.',
          schema: z.object({ numbers: z.array(z.number()) }),
        },
      },
    },
    worker: {
      description: 'One-way work: audit records, and a handler that always fails.',
      targets: {
        [TARGETS.audit]: { description: 'A record to log.', replies: false },
        [TARGETS.flaky]: {
          description: 'Always throws: dead-lettered after 5 deliveries.',
          replies: false,
        },
      },
    },
  },
  replies: { retentionSeconds: 3600 },
});
