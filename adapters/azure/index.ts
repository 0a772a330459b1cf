/**
 * cloudmom on Azure: `ServiceBusBroker` (Service Bus queues and topics, `@azure/service-bus` v7,
 * loaded on first use) and `azureFunctionHandler` (the Azure Functions v4 Service Bus trigger).
 *
 * Files: `broker.ts` (the broker, its transport and sources), `wire.ts` (the wire mapping),
 * `entrypoint.ts` (the Functions trigger handler).
 *
 * @example
 * ```ts
 * import { app } from '@azure/functions';
 * import { ServiceBusBroker, azureFunctionHandler } from 'cloudmom/azure';
 * const broker = new ServiceBusBroker({ connectionString: process.env.ServiceBusConnection });
 * broker.add('hello', () => 'Hi there too');
 * app.serviceBusQueue('hello', { connection: 'ServiceBusConnection', queueName: 'hello', handler: azureFunctionHandler(broker) });
 * ```
 * @module
 */
export {
  REPLY_QUEUE_PREFIX,
  ServiceBusBroker,
  type ServiceBusBrokerOptions,
} from './broker.ts';
export {
  type AzureFunctionHandlerOptions,
  type AzureServiceBusFunction,
  azureFunctionHandler,
  type DecodedTriggerMessage,
  type FunctionContextLike,
  fromTrigger,
  type ServiceBusSettlementActions,
} from './entrypoint.ts';
export {
  fromReceived,
  measureServiceBus,
  STANDARD_MAX_MESSAGE_BYTES,
  toServiceBusMessage,
} from './wire.ts';
