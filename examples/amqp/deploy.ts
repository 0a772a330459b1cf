/**
 * The example app's RabbitMQ deploy options: `npm run infra` generates
 * `infra/amqp/definitions.json` from `examples/topology.ts` with them, and the example's
 * brokers (`examples/amqp/index.ts`) take theirs from the same (`amqpBrokerOptions`).
 *
 * @example
 * ```ts
 * import { amqpBrokerOptions } from 'cloudmom/infra';
 * amqpBrokerOptions(topology, 'greeter', deploy).queue; // "cloudmom-examples-greeter"
 * ```
 * @module
 */
import type { AmqpInfraOptions } from 'cloudmom/infra';

/** The default vhost; the delivery limit is twice each service's maxDeliveries (10). */
export const deploy: AmqpInfraOptions = { vhost: '/' };
