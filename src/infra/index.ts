/**
 * IaC generators: pure functions from a {@link Topology} to the files that provision it on
 * one platform. No cloud SDK, no I/O: write the files yourself, or with `cloudmom infra`.
 *
 * @example
 * ```ts
 * import { defineTopology } from 'cloudmom';
 * import { generate } from 'cloudmom/infra';
 *
 * const topology = defineTopology({ name: 'shop', services: { orders: { targets: ['order.created'] } } });
 * for (const file of generate('kafka', topology)) console.log(file.path, file.content.length);
 * ```
 * @module
 */
import { InvalidArgumentError } from '../errors.ts';
import type { Topology } from '../topology.ts';
import { generateAmqp } from './amqp.ts';
import { generateAws } from './aws.ts';
import { generateAzure } from './azure.ts';
import { generateCloudflare } from './cloudflare.ts';
import { generateGcp } from './gcp.ts';
import { generateKafka } from './kafka.ts';
import type { GeneratedFile, Generator } from './types.ts';

export {
  type AsyncApiDocument,
  type AsyncApiOptions,
  asyncapi,
  generateAsyncapi,
  type JsonSchema,
} from '../asyncapi.ts';
export {
  type AmqpInfraOptions,
  amqpBrokerOptions,
  generateAmqp,
} from './amqp.ts';
export {
  type AwsFunctionOptions,
  type AwsNames,
  type AwsOptions,
  type AwsServiceNames,
  awsNames,
  generateAws,
} from './aws.ts';
export {
  AZURE_ROLES,
  type AzureOptions,
  type AzureService,
  azureService,
  generateAzure,
} from './azure.ts';
export {
  type CloudflareBindings,
  type CloudflareInfraOptions,
  type CloudflareServiceBindings,
  cloudflareBindings,
  generateCloudflare,
} from './cloudflare.ts';
export { type GcpOptions, type GcpService, gcpService, generateGcp } from './gcp.ts';
export { generateKafka, type KafkaInfraOptions, kafkaBrokerOptions } from './kafka.ts';
export type { GeneratedFile, Generator } from './types.ts';

/**
 * The generators by platform name. Each takes the topology and that platform's own options
 * (documented on the generator) and returns the files, with paths relative to the output folder.
 *
 * @example
 * ```ts
 * Object.keys(GENERATORS); // the platforms `cloudmom infra <platform>` knows
 * ```
 */
export const GENERATORS: Readonly<Record<string, Generator<never>>> = /* @__PURE__ */ Object.freeze(
  {
    aws: generateAws,
    azure: generateAzure,
    gcp: generateGcp,
    cloudflare: generateCloudflare,
    amqp: generateAmqp,
    kafka: generateKafka,
  },
);

/**
 * Runs the generator of `platform`.
 *
 * @example
 * ```ts
 * const files = generate('kafka', topology);
 * ```
 */
export function generate(platform: string, topology: Topology, options?: object): GeneratedFile[] {
  const generator = GENERATORS[platform] as Generator<object> | undefined;
  if (!generator)
    throw new InvalidArgumentError(
      `no IaC generator for "${platform}" (platforms: ${Object.keys(GENERATORS).join(', ') || 'none yet'})`,
    );
  return generator(topology, options);
}
