/**
 * The example app (examples/app.ts) as Azure Functions (Node v4 programming model), on the
 * topology infra/azure/main.bicep deploys: one function per handler group on the `cloudmom`
 * topic's subscriptions (filtered on the subject = target), and one on the `cloudmom-inbox`
 * queue. Triggers use the SDK-type binding (`sdkBinding: true`, auto-complete off in host.json)
 * so each message of a batch is settled on its own; replies go through the broker's own
 * `ServiceBusClient` to the `replyTo` the caller set (the `cloudmom-replies` queue).
 */
import type { app as functionsApp } from '@azure/functions';
import { DefaultAzureCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { azureFunctionHandler, ServiceBusBroker } from 'cloudmom/azure';
import { registerExample, TARGETS } from '../app.ts';

/** App setting prefix of the trigger connection (`ServiceBusConnection__fullyQualifiedNamespace`). */
export const CONNECTION = 'ServiceBusConnection';
export const TOPIC = process.env.CLOUDMOM_TOPIC ?? 'cloudmom';
export const INBOX = process.env.CLOUDMOM_INBOX ?? 'cloudmom-inbox';
export const REPLY_QUEUE = process.env.CLOUDMOM_REPLY_QUEUE ?? 'cloudmom-replies';

/**
 * The function app's broker. In Azure the managed identity reaches the namespace named by
 * `ServiceBusConnection__fullyQualifiedNamespace`; locally (func start against the emulator or
 * the test peer) a connection string in `ServiceBusConnection` does.
 *
 * @example
 * ```ts
 * const broker = createBroker({ ServiceBusConnection: 'Endpoint=sb://localhost;...;UseDevelopmentEmulator=true' });
 * ```
 */
export function createBroker(env: NodeJS.ProcessEnv = process.env): ServiceBusBroker {
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
      // Replies only to the deployment's reply queue (and request() reply queues of cloudmom clients).
      replyAllowList: [REPLY_QUEUE, 'cloudmom-reply-*'],
    }),
    { log: (line) => console.log(line) },
  );
}

/** What `registerFunctions` needs of `app` from @azure/functions. */
export type FunctionsApp = Pick<typeof functionsApp, 'serviceBusTopic' | 'serviceBusQueue'>;

/**
 * Registers one topic-subscription function per target and one inbox-queue function.
 *
 * @example
 * ```ts
 * import { app } from '@azure/functions';
 * registerFunctions(app, createBroker());
 * ```
 */
export function registerFunctions(app: FunctionsApp, broker: ServiceBusBroker): void {
  const handler = azureFunctionHandler(broker);
  for (const target of Object.values(TARGETS)) {
    app.serviceBusTopic(`cloudmom-${target}`, {
      connection: CONNECTION,
      topicName: TOPIC,
      subscriptionName: target,
      cardinality: 'many',
      sdkBinding: true,
      handler,
    });
  }
  app.serviceBusQueue('cloudmom-inbox', {
    connection: CONNECTION,
    queueName: INBOX,
    cardinality: 'many',
    sdkBinding: true,
    autoCompleteMessages: false,
    handler,
  });
}
