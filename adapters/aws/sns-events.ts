/**
 * SNS events (topic → function) in the Lambda entrypoint: the records checked and decoded,
 * dispatched, a failing record dead-lettered at once (`snsFailure: 'dead-letter'`) or the
 * event failed for Lambda to retry. `lambdaHandler` reaches it through the broker
 * (`SNS_EVENTS`, set by {@link takeSnsEvents}); only the brokers that take SNS events carry
 * it, so the bundle of an SQS-only function leaves this module out.
 */
import type { BrokerCore } from '../../src/broker-core.ts';
import { dispatch } from '../../src/entrypoint.ts';
import { CloudmomError, InvalidArgumentError } from '../../src/errors.ts';
import { describeError } from '../../src/log.ts';
import type { IncomingMessage, Verdict } from '../../src/transport.ts';
import { SNS_EVENTS, type SnsEvents } from './entrypoint.ts';
import { fromSnsRecord, type SnsRecord, withPoison } from './wire.ts';

/** Gives a broker the SNS-event handling (its constructor calls it). */
export function takeSnsEvents(broker: object): void {
  (broker as { [SNS_EVENTS]?: SnsEvents })[SNS_EVENTS] = snsEvents;
}

/** The SNS-event handling the brokers of `cloudmom/aws` and the SnsBroker carry. */
export const snsEvents: SnsEvents = (broker, records, snsFailure) => {
  for (const r of records as Record<string, unknown>[]) {
    const sns = r?.Sns as Record<string, unknown> | undefined;
    if (
      r?.EventSource !== 'aws:sns' ||
      !sns ||
      typeof sns.Message !== 'string' ||
      typeof sns.MessageId !== 'string'
    )
      throw new InvalidArgumentError('lambdaHandler: an SNS event record has no Sns.Message');
  }
  const messages = (records as SnsRecord[]).map(fromSnsRecord);
  let results = dispatch(broker, messages);
  if (snsFailure === 'dead-letter')
    results =
      results instanceof Promise
        ? results.then((rs) => deadLetterFailed(broker, messages, rs))
        : deadLetterFailed(broker, messages, results);
  return results instanceof Promise ? results.then(answer) : answer(results);
};

/** Throws when a record did not come out `ack` (Lambda retries the event). */
function answer(results: readonly Verdict[]): undefined {
  let failed = 0;
  let first: unknown;
  for (const r of results) {
    if (r.kind === 'ack') continue;
    failed++;
    first ??= r.kind === 'retry' ? r.error : r.reason;
  }
  if (failed > 0) {
    throw new CloudmomError(
      'transport-failed',
      `${failed} of ${results.length} SNS records failed; Lambda will retry the event`,
      { cause: first, retryable: true },
    );
  }
  return undefined;
}

/** SNS records that failed: dead-lettered now (their attempt count is unknown). */
function deadLetterFailed(
  broker: BrokerCore,
  messages: readonly IncomingMessage[],
  results: Verdict[],
): Verdict[] | Promise<Verdict[]> {
  const again: IncomingMessage[] = [];
  const at: number[] = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    if (r.kind !== 'retry') continue;
    at.push(i);
    again.push(
      withPoison(messages[i]!, {
        code: 'handler-failed',
        description: `${describeError(r.error)} (SNS → Lambda: the attempt count is unknown, so dead-lettered on the first failure)`,
      }),
    );
  }
  if (again.length === 0) return results;
  const merge = (vs: readonly Verdict[]) => {
    for (let j = 0; j < at.length; j++) results[at[j]!] = vs[j]!;
    return results;
  };
  const second = dispatch(broker, again);
  return second instanceof Promise ? second.then(merge) : merge(second);
}
