/**
 * The conformance suite on Cloudflare Queues in workerd (Miniflare): the adapter's transport
 * over real producer bindings, consumed through the bridge Worker (see test/cloudflare/bridge.ts
 * for why a push-only platform needs it, and what is real). Each case gets a fresh Miniflare.
 */
import { bridgeFixture, cloudflareCapabilities, LEASE_MS } from '../cloudflare/bridge.ts';
import { runConformance } from './suite.ts';

runConformance('CloudflareQueueBroker (workerd)', bridgeFixture, {
  capabilities: cloudflareCapabilities(),
  orderingReason: 'Cloudflare Queues do not order messages (no group key)',
  requestReason:
    'a Worker cannot wait on a reply queue (push-only: the runtime calls queue()); request() is refused with a typed error',
  injectRaw: true,
  failingReply: true,
  missingDestination:
    'a producer binding always names an existing queue (wrangler deploy refuses a binding to a missing one; Miniflare creates every configured queue)',
  foreignAddress: 'attacker-queue',
  // Miniflare's Node-side producer binding serializes with devalue, which refuses a
  // `__proto__` key; the suite's other awkward names all go through.
  headerKeys: [
    'x-tenant',
    'a.b.c',
    'with space',
    'slash/and/../dots',
    'quote"s',
    'ünïcødé',
    'UPPER_lower-09',
    'constructor',
  ],
  lockMs: LEASE_MS,
  timeScale: 2, // whole-second retry delays, and CI runs every platform at once on 2 cores
});
