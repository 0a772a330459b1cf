/**
 * How `serverless.yml` deploys the example app: the options of `generateAws` (cloudmom/infra)
 * that `npm run infra` generates it with, from `examples/topology.ts`.
 *
 * The two functions run one entrypoint, `examples/aws/handler.ts`, bundled by
 * `infra/aws/bundle.cjs` while osls reads its configuration (no build step, no plugin); the
 * zip holds only the bundle.
 *
 * @example
 * ```ts
 * import { generateAws } from 'cloudmom/infra';
 * const [file] = generateAws(topology, deploy);
 * ```
 * @module
 */
import type { AwsOptions } from 'cloudmom/infra';

/** The example app's deployment options. */
export const deploy: AwsOptions = {
  // Builds examples/aws/dist/handler.mjs and answers "examples/aws/dist/handler.handler".
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an osls variable, not a template
  handler: '${file(./infra/aws/bundle.cjs):handler}',
  // The bundle is self-contained (the Lambda runtime provides the AWS SDK): ship only it.
  package: { patterns: ['!**', 'examples/aws/dist/handler.mjs'], excludeDevDependencies: false },
  runtime: 'nodejs22.x',
  architecture: 'arm64',
  memorySize: 256,
  region: 'us-east-1',
  stage: 'dev',
  logRetentionInDays: 365,
  logLevel: 'warn',
  batchingWindowSeconds: 1,
  regenerate: 'npm run infra',
};
