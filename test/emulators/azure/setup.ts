/**
 * Global setup of the `azure` test project: starts the Service Bus peer
 * (`test/emulators/servicebus/`) as a child process on 127.0.0.2:5672, under `timeout` — or
 * uses `CLOUDMOM_SERVICEBUS_CONNECTION_STRING` from the environment (the official emulator, or
 * a namespace in Azure) — and provides the connection string to tests as
 * `inject('serviceBusConnectionString')`. The peer stops when the run ends.
 *
 * A child process rather than this one: vitest's main process also transforms modules for
 * the workers, and a peer stalled behind that answers late — the client closes a receiver whose
 * drain is not answered within 200 ms.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { log, PEER_LIFETIME_S, portOpen, ROOT, startPeer } from '../harness.ts';
import { peerConnectionString, startServiceBusPeer } from '../servicebus/peer.ts';

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

const HOST = '127.0.0.2';

export interface StartServiceBusOptions {
  /** Run the peer in a child process (under `timeout`) instead of this process. Default false. */
  readonly childProcess?: boolean;
}

/**
 * Starts the Service Bus peer on 127.0.0.2 (port 5672, or a free port when 5672 is taken, e.g.
 * by another test run), unless `CLOUDMOM_SERVICEBUS_CONNECTION_STRING` is set. For benches and
 * scripts (in this process by default); tests get the connection string from
 * `inject('serviceBusConnectionString')`.
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
export async function startServiceBus(
  options: StartServiceBusOptions = {},
): Promise<ServiceBusEndpoint> {
  const fromEnv = process.env[SERVICEBUS_ENV];
  if (fromEnv) {
    log('servicebus', `using the namespace from ${SERVICEBUS_ENV}`);
    return { connectionString: fromEnv, isPeer: false, stop: async () => {} };
  }
  if (options.childProcess) {
    const port = await freePort(HOST, 5672);
    const connectionString = peerConnectionString(HOST, port);
    const peer = await startPeer({
      name: 'servicebus',
      envVar: SERVICEBUS_ENV,
      endpoint: connectionString,
      command: () => ({
        cmd: process.execPath, // Node 22, which runs the peer's TypeScript directly
        args: [
          join(ROOT, 'test/emulators/servicebus/cli.ts'),
          ...['--host', HOST, '--port', String(port), '--lifetime', String(PEER_LIFETIME_S)],
        ],
      }),
      ready: () => portOpen(HOST, port),
      startTimeoutMs: 30_000,
    });
    return { connectionString, isPeer: true, stop: () => peer.stop() };
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

/** `preferred` if nothing listens there, else a port the system picks. */
async function freePort(host: string, preferred: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, host, () => {
        const bound = (server.address() as { port: number }).port;
        server.close(() => resolve(bound));
      });
    });
  const port = (await tryListen(preferred)) ?? (await tryListen(0));
  if (port === undefined) throw new Error(`no free port on ${host}`);
  if (port !== preferred) log('servicebus', `${host}:${preferred} is taken; using port ${port}`);
  return port;
}

export default async function setup(project: TestProject) {
  const sb = await startServiceBus({ childProcess: true });
  project.provide('serviceBusConnectionString', sb.connectionString);
  project.provide('serviceBusIsPeer', sb.isPeer);
  return async () => {
    await sb.stop();
  };
}
