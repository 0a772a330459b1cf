/**
 * The Worker of test/cloudflare/log-safety.test.ts (bundled by that test): the log-safety
 * handlers of test/log-safety.ts on a `CloudflareQueueBroker` whose logger is the default JSON
 * logger at `env.LOG_LEVEL` (console in workerd, `process.stderr` with `nodejs_compat`);
 * `queue()` on `q` is `queueHandler(broker)`, and the dead letters arriving on `dlq` are kept
 * for the test (`GET /dead-letters`).
 *
 * Endpoints: `POST /publish-marked`, `GET /stats`, `GET /dead-letters`.
 */
import { jsonLogger, type LogLevel } from 'cloudmom';
import {
  CloudflareQueueBroker,
  type QueueBatch,
  type QueueBinding,
  queueHandler,
} from 'cloudmom/cloudflare';
import { addHandlers, liarCodec, MARKER, publishMarked } from '../../log-safety.ts';

interface Env {
  QUEUE: QueueBinding;
  DEAD_LETTERS: QueueBinding;
  LOG_LEVEL: LogLevel;
}

const dead: { target?: string; reason?: string; descriptionHasMarker: boolean }[] = [];
let brokers: { broker: CloudflareQueueBroker; liar: CloudflareQueueBroker } | undefined;

function brokersFor(env: Env) {
  if (brokers) return brokers;
  const common = { queue: env.QUEUE, queueName: 'q', logger: jsonLogger(env.LOG_LEVEL) };
  const broker = addHandlers(
    new CloudflareQueueBroker({
      ...common,
      deadLetterQueue: env.DEAD_LETTERS,
      maxDeliveries: 2,
      retry: { baseDelayMs: 0, maxDelayMs: 0 },
    }),
  );
  const liar = new CloudflareQueueBroker({ ...common, codecs: [liarCodec] });
  brokers = { broker, liar };
  return brokers;
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(req.url);
    const { broker, liar } = brokersFor(env);
    if (pathname === '/publish-marked')
      return Response.json({ published: await publishMarked(broker, liar) });
    if (pathname === '/stats') return Response.json(broker.stats);
    if (pathname === '/dead-letters') return Response.json(dead);
    return new Response('not found', { status: 404 });
  },

  async queue(batch: QueueBatch, env: Env): Promise<void> {
    if (batch.queue === 'q') return queueHandler(brokersFor(env).broker)(batch, env);
    for (const m of batch.messages) {
      // the dead-letter envelope as the adapter writes it (see adapters/cloudflare/wire.ts)
      const a = (m.body as { attributes?: Record<string, string> }).attributes ?? {};
      dead.push({
        target: a.target,
        reason: a.dead_letter_reason,
        descriptionHasMarker: (a.dead_letter_description ?? '').includes(MARKER),
      });
      m.ack();
    }
  },
};
