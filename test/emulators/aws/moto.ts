/**
 * The AWS test peer: moto server (SQS, SNS, CloudFormation, S3...) from PyPI, in a virtualenv
 * under `.cache/py-moto`, started on 127.0.0.1 on a free port. `CLOUDMOM_AWS_ENDPOINT`
 * (an `AWS_ENDPOINT_URL`-style URL, e.g. a LocalStack) replaces it.
 *
 * Used by the `aws` test project's global setup and by `bench/aws.bench.ts`.
 *
 * @example
 * ```ts
 * const moto = await startMoto();
 * const sqs = new SQSClient(awsClientConfig(moto.endpoint));
 * // ...
 * await moto.stop();
 * ```
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, type PeerSpec, pyTool, type RunningPeer, startPeer } from '../harness.ts';

/** moto_server with a faster clock (see the file): moto's SQS is quadratic in queue depth. */
const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), 'moto_server.py');

/** Environment variable naming an existing endpoint to use instead of starting moto. */
export const AWS_ENDPOINT_ENV = 'CLOUDMOM_AWS_ENDPOINT';
/** The moto release installed from PyPI. */
export const MOTO_REQUIREMENT = 'moto[server]==5.2.*';
/** Region and dummy credentials every test client uses (moto accepts anything). */
export const AWS_REGION = 'us-east-1';
export const AWS_TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;
/** moto's default account id (ARNs, queue URLs). */
export const MOTO_ACCOUNT_ID = '123456789012';

/** The moto peer spec for {@link startPeer}, serving on `127.0.0.1:<port>`. */
export function motoPeer(port: number): PeerSpec {
  const endpoint = `http://127.0.0.1:${port}`;
  let bin = '';
  return {
    name: 'moto',
    envVar: AWS_ENDPOINT_ENV,
    endpoint,
    install() {
      bin = pyTool('moto', [MOTO_REQUIREMENT]);
    },
    command: () => ({
      cmd: `${bin}/python`,
      args: [LAUNCHER, '-H', '127.0.0.1', '-p', String(port)],
      env: { MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
    }),
    async ready(url) {
      try {
        const res = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(2000) });
        return res.status < 500;
      } catch {
        return false;
      }
    },
    startTimeoutMs: 60_000,
  };
}

/**
 * Starts moto (or uses `CLOUDMOM_AWS_ENDPOINT`) and sets the environment the AWS SDK and
 * osls read (`AWS_ENDPOINT_URL`, dummy credentials, region) in this process.
 */
export async function startMoto(): Promise<RunningPeer> {
  const port = Number(process.env.CLOUDMOM_MOTO_PORT) || (await freePort());
  const peer = await startPeer(motoPeer(port));
  setAwsEnv(peer.endpoint);
  return peer;
}

/** Sets the SDK's environment for `endpoint`: endpoint URL, dummy credentials, region. */
export function setAwsEnv(endpoint: string): void {
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_ACCESS_KEY_ID = AWS_TEST_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = AWS_TEST_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = AWS_REGION;
  process.env.AWS_DEFAULT_REGION = AWS_REGION;
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

/** Client configuration for an SDK v3 client talking to the peer at `endpoint`. */
export function awsClientConfig(endpoint: string) {
  return { endpoint, region: AWS_REGION, credentials: { ...AWS_TEST_CREDENTIALS } };
}
