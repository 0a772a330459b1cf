/**
 * The context the documentation's code blocks share, as a reader has it: a `broker`, the
 * app's own functions and schemas, the platform's runtime types (a Worker's `Env`). Every
 * block is type-checked with these in scope (scripts/doc-blocks.ts); cloudmom's own names
 * must be imported by the block itself.
 */
import type { Broker, Handler, StandardSchema } from 'cloudmom';

declare global {
  const broker: Broker;
  const handle: Handler;
  const handleOrder: Handler;
  const audit: Handler;
  const OrderSchema: StandardSchema;
  const bytes: Uint8Array;
  const save: (value: unknown) => Promise<void>;
  const connectionString: string;
  const url: string;
  const username: string;
  const password: string;
  const z: typeof import('zod').z;
  const functions: typeof import('@google-cloud/functions-framework');
  const createServer: typeof import('node:http').createServer;
  const app: typeof import('@azure/functions').app;
  /** A Worker's bindings (wrangler.toml): producer bindings by name. */
  interface Env {
    readonly QUEUE: import('cloudmom/cloudflare').QueueBinding;
    readonly DEAD_LETTERS: import('cloudmom/cloudflare').QueueBinding;
    readonly REPLIES: import('cloudmom/cloudflare').QueueBinding;
  }
  type MessageBatch = Parameters<ReturnType<typeof import('cloudmom/cloudflare').queueHandler>>[0];
  type ExecutionContext = Parameters<
    ReturnType<typeof import('cloudmom/cloudflare').queueHandler>
  >[2];
}
