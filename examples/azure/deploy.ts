/**
 * The example app's Azure deploy options: what `npm run infra` passes to `generateAzure` with
 * `examples/topology.ts` to write `infra/azure/main.bicep`. `functions.ts` reads the same
 * constants, so the app settings the Bicep writes and the names the functions read agree.
 *
 * @example
 * ```ts
 * import { generateAzure } from 'cloudmom/infra';
 * const [bicep] = generateAzure(topology, deploy);
 * ```
 * @module
 */
import type { AzureOptions } from 'cloudmom/infra';

/** App-setting prefix of the trigger connection (`ServiceBusConnection__fullyQualifiedNamespace`). */
export const CONNECTION = 'ServiceBusConnection';

/** The generator options of the example app (no stage: the names of `topology.names()`). */
export const deploy: AzureOptions = { connection: CONNECTION };
