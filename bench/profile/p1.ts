/**
 * Profiling driver for the P1 path (Lambda SQS dispatch, no network):
 * `node --conditions=source --cpu-prof --cpu-prof-dir=.cache/prof bench/profile/p1.ts [hand]`.
 */
import { lambdaHandler, SqsBroker, type SqsEvent } from '../../adapters/aws/index.ts';
import { handLoop, events as makeEvents, QUEUE_ARN } from '../sqs-events.ts';

let sink = 0;
const trivial = (body: { id: number }) => {
  sink += body.id;
};
const events = makeEvents(Number(process.env.EVENTS ?? 2000));
const broker = new SqsBroker({ queue: QUEUE_ARN, logger: false });
broker.add('orders', (_p, body) => trivial(body));
const ours = lambdaHandler(broker);
const hand = handLoop({ orders: trivial });
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
