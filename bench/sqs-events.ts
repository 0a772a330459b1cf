/**
 * The P1 workload, shared by `bench/aws.bench.ts` and its profiling driver
 * `bench/profile/p1.ts` so both measure the same records and the same anchor.
 */
import type { SqsEvent, SqsRecord } from '../adapters/aws/index.ts';

export const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:bench';

/** A record in the shape the SQS event source mapping delivers (as test/aws captures from moto). */
export function record(i: number): SqsRecord {
  const now = String(Date.now());
  return {
    messageId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    receiptHandle: `AQEB${i}`,
    body: JSON.stringify({ id: i, name: `item ${i}`, tags: ['a', 'b'], price: i * 1.5 }),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: now,
      SenderId: 'AIDAIT2UOQQY3AUEKVGXU',
      ApproximateFirstReceiveTimestamp: now,
    },
    messageAttributes: {
      target: {
        stringValue: 'orders',
        stringListValues: [],
        binaryListValues: [],
        dataType: 'String',
      },
      content_type: {
        stringValue: 'application/json',
        stringListValues: [],
        binaryListValues: [],
        dataType: 'String',
      },
    },
    md5OfBody: '0',
    eventSource: 'aws:sqs',
    eventSourceARN: QUEUE_ARN,
    awsRegion: 'us-east-1',
  };
}

/** `count` events of 10 records each. */
export function events(count: number): SqsEvent[] {
  return Array.from({ length: count }, (_, e) => ({
    Records: Array.from({ length: 10 }, (_, i) => record(e * 10 + i)),
  }));
}

/** The anchor: a hand-written loop over `event.Records` with a partial batch response. */
export function handLoop(handlers: Record<string, (body: any) => void>) {
  return async (event: SqsEvent) => {
    const batchItemFailures: { itemIdentifier: string }[] = [];
    for (const r of event.Records) {
      try {
        const h = handlers[r.messageAttributes.target?.stringValue ?? ''];
        if (h) await h(JSON.parse(r.body));
      } catch {
        batchItemFailures.push({ itemIdentifier: r.messageId });
      }
    }
    return { batchItemFailures };
  };
}
