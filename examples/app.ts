/**
 * The example app: the handlers `npm start` runs on the embedded broker and that
 * `serverless.yml` and `infra/` deploy to the clouds. Platform entrypoints in
 * `examples/<platform>/` register these same handlers on their platform's broker.
 */
import type { BrokerCore, Properties } from 'cloudmom';

/** Targets the example app handles. */
export const TARGETS = {
  hello: 'hello',
  sum: 'sum',
  audit: 'audit',
  flaky: 'flaky',
} as const;

/**
 * Registers the example handlers on any broker.
 *
 * @example
 * ```ts
 * const broker = registerExample(new MemoryBroker());
 * await broker.start();
 * ```
 */
export function registerExample<B extends BrokerCore>(
  broker: B,
  options: { log?: (line: string) => void; helloReplyTo?: string } = {},
): B {
  const log = options.log ?? (() => {});
  // The seed's example: receive a greeting, answer "Hi there too" (to the message's reply
  // address, else to the `helloReplyTo` target).
  broker.add(
    TARGETS.hello,
    (properties: Properties, body: unknown) => {
      log(`hello    ← ${JSON.stringify(body)} (correlation ${properties.correlationId ?? '-'})`);
      return 'Hi there too';
    },
    options.helloReplyTo,
  );
  // An RPC-style handler: sums numbers; a second handler on the same target audits it.
  broker.add(TARGETS.sum, (_p: Properties, body: { numbers: number[] }) => {
    if (!Array.isArray(body?.numbers)) throw new TypeError('body.numbers must be an array');
    return { sum: body.numbers.reduce((a, b) => a + b, 0) };
  });
  broker.add(TARGETS.sum, (properties: Properties) => {
    log(
      `sum      ← delivery ${properties.deliveryCount}, message ${properties.messageId.slice(0, 8)}`,
    );
  });
  // A one-way target with no reply.
  broker.add(TARGETS.audit, (_p: Properties, body: unknown) => {
    log(`audit    ← ${JSON.stringify(body)}`);
  });
  // A handler that always fails: its messages are retried, then dead-lettered with the reason.
  broker.add(TARGETS.flaky, (properties: Properties) => {
    log(`flaky    ← delivery ${properties.deliveryCount}: throwing`);
    throw new Error('downstream service unavailable');
  });
  return broker;
}
