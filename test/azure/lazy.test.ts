/**
 * `@azure/service-bus` is loaded on first use: in a Node process where it cannot be resolved,
 * `cloudmom/azure` imports, a broker is constructed from a connection string, the Functions
 * handler dispatches a message whose handler sends nothing, and only the first send fails —
 * with a typed error naming the package to install.
 */
import { describe, expect, it } from 'vitest';
import { runWithoutPackage } from '../without-package.ts';

const SCRIPT = `
const { ServiceBusBroker, azureFunctionHandler } = await import('cloudmom/azure');
const broker = new ServiceBusBroker({
  connectionString: 'Endpoint=sb://127.0.0.9;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
  queue: 'q',
  logger: false,
});
let handled = 0;
broker.add('quiet', () => { handled++; });
await azureFunctionHandler(broker)('"x"', {
  triggerMetadata: { messageId: 'm-1', subject: 'quiet', contentType: 'application/json', deliveryCount: 1 },
});
const err = await broker.publish('x', 'y').catch((e) => e);
await broker.stop();
console.log(JSON.stringify({ handled, name: err?.name, code: err?.code, message: err?.message }));
`;

describe('the Service Bus SDK is loaded lazily', () => {
  it('cloudmom/azure imports, constructs and dispatches without @azure/service-bus; the first send says what to install', () => {
    const result = runWithoutPackage('@azure/service-bus', SCRIPT);
    expect(result).toMatchObject({ handled: 1, name: 'InvalidArgumentError' });
    expect(result.message).toMatch(/npm install @azure\/service-bus/);
  });
});
