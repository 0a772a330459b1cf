/**
 * The Worker the `cloudflare` tests run inside workerd (bundled by
 * test/emulators/cloudflare/setup.ts). Node cannot pull from a queue, so the tests read what
 * happened here through `fetch` endpoints.
 */
import { Broker } from '../../../src/broker.ts';
import { jsonCodec } from '../../../src/codec.ts';

/** What the core needs of the runtime, as this Worker sees it. */
function runtimeFacts(): Record<string, string> {
  const g = globalThis as Record<string, unknown> & { process?: { stderr?: unknown } };
  return {
    process: typeof g.process,
    processStderr: typeof g.process?.stderr,
    randomUUID: typeof globalThis.crypto?.randomUUID,
    TextEncoder: typeof TextEncoder,
    TextDecoder: typeof TextDecoder,
    setImmediate: typeof g.setImmediate,
    queueMicrotask: typeof queueMicrotask,
    AbortSignalTimeout: typeof AbortSignal.timeout,
    Buffer: typeof g.Buffer,
    btoa: typeof btoa,
    core:
      typeof Broker === 'function' && typeof jsonCodec.encode === 'function' ? 'loaded' : 'missing',
  };
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/runtime') return Response.json(runtimeFacts());
    return new Response('not found', { status: 404 });
  },
};
