/**
 * fauxqs (an SQS/SNS emulator on npm) in a Node process of its own, on 127.0.0.1 on a free
 * port, as the benchmarks' second SQS peer: like moto, the RabbitMQ, Kafka, Pub/Sub and
 * Service Bus peers, it then spends its own CPU, not the measured client's (an SQS client never
 * shares a process with the service). `CLOUDMOM_FAUXQS_ENDPOINT` replaces it with a running
 * one. The tests that use fauxqs run it inside the test's process (`startFauxqs` from the
 * package): there only behaviour is measured, not CPU.
 *
 * @example
 * ```ts
 * const faux = await startFauxqsProcess();
 * const sqs = new SQSClient(awsClientConfig(faux.endpoint));
 * // ...
 * await faux.stop();
 * ```
 */
import { freePort, portOpen, type RunningPeer, startPeer } from '../harness.ts';

/** Environment variable naming an existing fauxqs endpoint to use instead of starting one. */
export const FAUXQS_ENDPOINT_ENV = 'CLOUDMOM_FAUXQS_ENDPOINT';

/** Starts fauxqs in a child Node process (stopped by `stop()`, or by `timeout` at the latest). */
export async function startFauxqsProcess(): Promise<RunningPeer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  return startPeer({
    name: 'fauxqs',
    envVar: FAUXQS_ENDPOINT_ENV,
    endpoint,
    command: () => ({
      cmd: process.execPath,
      args: [
        '--input-type=module',
        '-e',
        `const { startFauxqs } = await import('fauxqs');
await startFauxqs({ port: ${port}, host: '127.0.0.1', logger: false });`,
      ],
    }),
    ready: (url) => {
      const u = new URL(url);
      return portOpen(u.hostname, Number(u.port), 500);
    },
    startTimeoutMs: 30_000,
  });
}
