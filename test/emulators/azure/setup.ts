/**
 * Global setup of the `azure` test project: starts the Service Bus peer
 * (`test/emulators/servicebus/peer.ts`) in this process on 127.0.0.2:5672 — or uses
 * `CLOUDMOM_SERVICEBUS_CONNECTION_STRING` from the environment (the official emulator, or a
 * namespace in Azure) — and provides the connection string to tests as
 * `inject('serviceBusConnectionString')`. The peer closes when the run ends.
 */
import type { TestProject } from 'vitest/node';
import { log } from '../harness.ts';
import { startServiceBusPeer } from '../servicebus/peer.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the Service Bus peer (or of the namespace from the environment). */
    serviceBusConnectionString: string;
    /** True when the tests run against the in-process peer (its extensions may be used). */
    serviceBusIsPeer: boolean;
  }
}

/** Environment variable that replaces the peer with an existing Service Bus. */
export const SERVICEBUS_ENV = 'CLOUDMOM_SERVICEBUS_CONNECTION_STRING';

export interface ServiceBusEndpoint {
  readonly connectionString: string;
  /** True when the peer was started here (false when the environment supplied a namespace). */
  readonly isPeer: boolean;
  stop(): Promise<void>;
}

/**
 * Starts the Service Bus peer on 127.0.0.2 (port 5672, or a free port when 5672 is taken, e.g.
 * by another test run), unless `CLOUDMOM_SERVICEBUS_CONNECTION_STRING` is set. For benches and
 * scripts; tests get the connection string from `inject('serviceBusConnectionString')`.
 *
 * @example
 * ```ts
 * const sb = await startServiceBus();
 * const client = new ServiceBusClient(sb.connectionString);
 * // ...
 * await client.close();
 * await sb.stop();
 * ```
 */
export async function startServiceBus(): Promise<ServiceBusEndpoint> {
  const fromEnv = process.env[SERVICEBUS_ENV];
  if (fromEnv) {
    log('servicebus', `using the namespace from ${SERVICEBUS_ENV}`);
    return { connectionString: fromEnv, isPeer: false, stop: async () => {} };
  }
  const t0 = Date.now();
  const peer = await startServiceBusPeer({ port: 5672 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EADDRINUSE') throw e;
    log('servicebus', '127.0.0.2:5672 is taken; using a free port');
    return startServiceBusPeer({ port: 0 });
  });
  log('servicebus', `peer ready at ${peer.host}:${peer.port} in ${Date.now() - t0} ms`);
  return { connectionString: peer.connectionString, isPeer: true, stop: () => peer.close() };
}

export default async function setup(project: TestProject) {
  const sb = await startServiceBus();
  project.provide('serviceBusConnectionString', sb.connectionString);
  project.provide('serviceBusIsPeer', sb.isPeer);
  return async () => {
    await sb.stop();
  };
}
