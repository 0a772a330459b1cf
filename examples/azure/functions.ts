/**
 * The example app (examples/app.ts) as Azure Functions (Node v4 programming model), on what
 * `infra/azure/main.bicep` (generated from examples/topology.ts) deploys: one Function App per
 * service of the topology, each with one function on that service's subscription of the topic
 * (filtered on the subject = its targets). The app setting `CLOUDMOM_SERVICE` says which service
 * an app runs; without it (local `func start`), every service's function is registered.
 *
 * Triggers use the SDK-type binding (`sdkBinding: true`, auto-complete off in host.json) so each
 * message of a batch is settled on its own; replies go through the broker's own
 * `ServiceBusClient` to the `replyTo` the caller set (the topology's reply queue). Names,
 * `maxDeliveries`, retry, concurrency and the reply allow-list come from the topology, so the
 * code and the deployed entities agree.
 */
import type { app as functionsApp } from '@azure/functions';
import { DefaultAzureCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { azureFunctionHandler, ServiceBusBroker } from 'cloudmom/azure';
import { azureService } from 'cloudmom/infra';
import { registerExample } from '../app.ts';
import { topology } from '../topology.ts';
import { CONNECTION, deploy } from './deploy.ts';

export { CONNECTION } from './deploy.ts';

/** The stage of the names (app setting `CLOUDMOM_STAGE`, written by the Bicep when generated with one). */
const STAGE = process.env.CLOUDMOM_STAGE || undefined;
const NAMES = topology.names(STAGE);
/** The topic `publish()` sends to. */
export const TOPIC = NAMES.topic;
/** The shared, session-enabled reply queue. */
export const REPLY_QUEUE = NAMES.replies!;

/**
 * The services an app runs: the one `CLOUDMOM_SERVICE` names, else all of them.
 *
 * @example
 * ```ts
 * servicesOf({ CLOUDMOM_SERVICE: 'greeter' }); // ["greeter"]
 * ```
 */
export function servicesOf(env: NodeJS.ProcessEnv = process.env): string[] {
  const one = env.CLOUDMOM_SERVICE;
  return one ? [topology.service(one).name] : topology.services.map((s) => s.name);
}

/**
 * A service's broker. In Azure the managed identity reaches the namespace named by
 * `ServiceBusConnection__fullyQualifiedNamespace`; locally (func start against the emulator or
 * the test peer) a connection string in `ServiceBusConnection` does.
 *
 * @example
 * ```ts
 * const broker = createBroker('greeter', { ServiceBusConnection: 'Endpoint=sb://localhost;...;UseDevelopmentEmulator=true' });
 * ```
 */
export function createBroker(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
): ServiceBusBroker {
  const connectionString = env[CONNECTION];
  const namespace = env[`${CONNECTION}__fullyQualifiedNamespace`];
  const client = connectionString
    ? new ServiceBusClient(connectionString)
    : namespace
      ? new ServiceBusClient(namespace, new DefaultAzureCredential())
      : undefined;
  if (!client)
    throw new Error(`set ${CONNECTION}__fullyQualifiedNamespace (Azure) or ${CONNECTION} (local)`);
  return registerExample(
    new ServiceBusBroker({
      client,
      publishTo: TOPIC,
      sessions: topology.service(service).ordered,
      // maxDeliveries, retry, concurrency, unknownTarget and the reply allow-list (the reply queue).
      ...topology.brokerOptions(service, { stage: STAGE }),
    }),
    { log: (line) => console.log(line) },
  );
}

/** What `registerFunctions` needs of `app` from @azure/functions. */
export type FunctionsApp = Pick<typeof functionsApp, 'serviceBusTopic'>;

/**
 * Registers one function per service on its topic subscription, with that service's broker.
 *
 * @example
 * ```ts
 * import { app } from '@azure/functions';
 * registerFunctions(app, { greeter: createBroker('greeter') });
 * ```
 */
export function registerFunctions(
  app: FunctionsApp,
  brokers: Readonly<Record<string, ServiceBusBroker>>,
): void {
  for (const [service, broker] of Object.entries(brokers)) {
    const az = azureService(topology, service, { ...deploy, stage: STAGE });
    app.serviceBusTopic(service, {
      connection: CONNECTION,
      topicName: TOPIC,
      subscriptionName: az.subscription,
      isSessionsEnabled: az.sessions,
      cardinality: 'many',
      sdkBinding: true,
      handler: azureFunctionHandler(broker, { ordered: az.sessions }),
    });
  }
}
