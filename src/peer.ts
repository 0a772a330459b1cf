/**
 * Optional peer dependencies (the cloud SDKs), loaded on first use — synchronously, through
 * `require` — so importing an adapter never fails for an SDK it has not needed yet, and a
 * function that never sends does not pay for loading one at cold start.
 */
import { InvalidArgumentError } from './errors.ts';

let load: NodeJS.Require | undefined;

/**
 * A loader of the optional peer `name`, needed by `subpath`: the module on first call (then
 * cached), or an `InvalidArgumentError` naming the package and how to install it.
 *
 * @example
 * ```ts
 * const sqsSdk = optionalPeer<SqsModule>('@aws-sdk/client-sqs', 'cloudmom/aws');
 * const { SQSClient } = sqsSdk(); // InvalidArgumentError naming the package when it is missing
 * ```
 */
export function optionalPeer<T>(name: string, subpath: string): () => T {
  let module: T | undefined;
  return () => {
    if (module === undefined) {
      try {
        // no static `node:module` import: nothing is loaded until an SDK is needed
        load ??= process.getBuiltinModule('node:module').createRequire(import.meta.url);
        module = load(name) as T;
      } catch (cause) {
        throw peerMissing(subpath, name, cause);
      }
    }
    return module;
  };
}

/**
 * The error for the optional peer `name`, needed by `what`, that cannot be loaded: an
 * `InvalidArgumentError` naming the package and how to install it.
 *
 * @example
 * ```ts
 * throw peerMissing('.use()', '@middy/core', cause); // needs the optional peer dependency @middy/core: npm install @middy/core
 * ```
 */
export function peerMissing(what: string, name: string, cause: unknown): InvalidArgumentError {
  return new InvalidArgumentError(
    `${what} needs the optional peer dependency ${name}: npm install ${name}`,
    { cause },
  );
}
