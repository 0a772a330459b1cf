/**
 * Runs osls on serverless.yml (generated from examples/topology.ts) for the AWS tests: package offline (no credentials, no
 * endpoint, no network) and deploy a packaged stage into an endpoint (moto, LocalStack) with
 * `AWS_ENDPOINT_URL`. Each caller uses its own stage and package folder, so test files can
 * run in parallel without sharing `.serverless/`.
 *
 * @example
 * ```ts
 * const stage = uniqueStage('e2e');
 * const dir = join(cacheDir('aws-e2e'), stage);
 * await packageExamples(stage, dir);
 * await deployExamples(stage, dir, 'http://127.0.0.1:5000');
 * ```
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { topology } from '../../examples/topology.ts';
import { type AwsNames, awsNames } from '../../src/infra/aws.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OSLS = join(ROOT, 'node_modules/osls/bin/serverless.js');

/** The service name in serverless.yml: the topology's name. */
export const SERVICE = topology.name;
/** The region the tests package and deploy to. */
export const REGION = 'us-east-1';

/**
 * The resource names of a stage, as the generated serverless.yml gives them (the topology's
 * names, AWS-spelled by the generator: the same function, so they cannot disagree).
 * @example
 * ```ts
 * stackNames('dev').services.greeter?.deadLetter; // "cloudmom-examples-dev-greeter-dead-letter"
 * ```
 */
export function stackNames(stage: string): AwsNames {
  return awsNames(topology, stage);
}

/**
 * A stage name of its own per run (letters and digits), so reruns against a long-lived
 * endpoint (`CLOUDMOM_AWS_ENDPOINT`) do not collide.
 * @example
 * ```ts
 * uniqueStage('e2e'); // "e2e4k2f9x1a"
 * ```
 */
export function uniqueStage(prefix: string): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** The CloudFormation template and zip `osls package` wrote. */
export interface Packaged {
  readonly dir: string;
  readonly template: { Resources: Record<string, any>; Outputs?: Record<string, any> };
  readonly zip: string;
}

/**
 * Runs osls in `cwd` (default: the repository root, the example's service) with exactly `env`
 * (plus PATH and an isolated HOME, so no ~/.aws profile or osls state leaks in). Rejects with
 * osls's output on failure.
 */
export function osls(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  home: string,
  timeoutMs = 180_000,
  cwd = ROOT,
): Promise<string> {
  mkdirSync(home, { recursive: true });
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      [OSLS, ...args],
      {
        cwd,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          SLS_TELEMETRY_DISABLED: '1',
          SLS_NOTIFICATIONS_MODE: 'off',
          ...env,
        },
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err)
          reject(new Error(`osls ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolvePromise(`${stdout}${stderr}`);
      },
    );
  });
}

/**
 * `osls package` for `stage` into `dir`: offline, with no AWS credentials or endpoint at all.
 * @example
 * ```ts
 * const { template } = await packageExamples('iac', '/tmp/pkg');
 * ```
 */
export async function packageExamples(stage: string, dir: string): Promise<Packaged> {
  await osls(
    ['package', '--stage', stage, '--region', REGION, '--package', dir],
    {},
    `${dir}.home`,
  );
  return {
    dir,
    template: JSON.parse(
      readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'),
    ),
    zip: join(dir, `${SERVICE}.zip`),
  };
}

/**
 * `osls deploy` of the package in `dir` into `endpoint` (`AWS_ENDPOINT_URL`), with dummy
 * credentials. Resolves once the stack is deployed.
 * @example
 * ```ts
 * await deployExamples('e2e1', '/tmp/pkg', 'http://127.0.0.1:5000');
 * ```
 */
export async function deployExamples(
  stage: string,
  dir: string,
  endpoint: string,
): Promise<string> {
  return osls(
    ['deploy', '--stage', stage, '--region', REGION, '--package', dir],
    {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
    },
    `${dir}.home`,
    240_000,
  );
}

const PYTHON = process.env.PYTHON ?? 'python3';

/**
 * The file names in a zip (Python's zipfile: python3 is needed by the test peers anyway,
 * `unzip` may be missing).
 * @example
 * ```ts
 * zipEntries('.serverless/cloudmom-examples.zip'); // ["examples/aws/dist/handler.mjs"]
 * ```
 */
export function zipEntries(zip: string): string[] {
  const r = spawnSync(
    PYTHON,
    ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', zip],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`cannot list ${zip}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/**
 * Extracts a zip into `dest` (as Lambda unpacks a function's code into /var/task).
 * @example
 * ```ts
 * extractZip('.serverless/cloudmom-examples.zip', '/tmp/task');
 * ```
 */
export function extractZip(zip: string, dest: string): void {
  const r = spawnSync(PYTHON, ['-m', 'zipfile', '-e', zip, dest], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot extract ${zip}: ${r.stderr}`);
}
