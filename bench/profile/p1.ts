/**
 * Profiling driver for the P1 path (Lambda SQS dispatch, no network):
 * `node --conditions=source --cpu-prof --cpu-prof-dir=.cache/prof bench/profile/p1.ts [hand]`.
 */
import {
  lambdaHandler,
  SqsBroker,
  type SqsEvent,
  type SqsRecord,
} from '../../adapters/aws/index.ts';

const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:bench';
function record(i: number): SqsRecord {
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
let sink = 0;
const trivial = (body: { id: number }) => {
  sink += body.id;
};
const events: SqsEvent[] = Array.from({ length: Number(process.env.EVENTS ?? 2000) }, (_, e) => ({
  Records: Array.from({ length: 10 }, (_, i) => record(e * 10 + i)),
}));
const broker = new SqsBroker({ queue: QUEUE_ARN, logger: false });
broker.add('orders', (_p, body) => trivial(body));
const ours = lambdaHandler(broker);
const handlers: Record<string, (body: any) => void> = { orders: trivial };
const hand = async (event: SqsEvent) => {
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
const PASSES = Number(process.env.PASSES ?? 1);
const ROUNDS = Number(process.env.ROUNDS ?? 41);
if (process.argv[2] === 'ab') {
  const { interleave, median } = await import('../rounds.ts');
  const rate = async (f: (e: SqsEvent) => Promise<unknown>) => {
    const c0 = process.cpuUsage();
    for (let p = 0; p < PASSES; p++) for (const e of events) await f(e);
    const c = process.cpuUsage(c0);
    return (PASSES * events.length * 10) / ((c.user + c.system) / 1e6);
  };
  const got = await interleave(
    { ours: () => rate((e) => ours(e, {})), hand: () => rate(hand) },
    ROUNDS,
    { warmup: 5, collect: false },
  );
  const r = got.ours.map((o, i) => o / got.hand[i]!);
  console.log(
    `ours ${Math.round(median(got.ours))} hand ${Math.round(median(got.hand))} ratio ${median(r).toFixed(3)} (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})`,
  );
  process.exit(0);
}
const which = process.argv[2] === 'hand' ? (e: SqsEvent) => hand(e) : (e: SqsEvent) => ours(e, {});
const t0 = performance.now();
let n = 0;
while (performance.now() - t0 < Number(process.env.SECONDS ?? 5) * 1000) {
  const t = performance.now();
  for (const e of events) await which(e);
  n++;
  if (n % 5 === 0) console.log(Math.round(20000 / ((performance.now() - t) / 1000)), 'records/s');
}
if (sink === 0) throw new Error('no');
