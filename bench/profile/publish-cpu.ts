/**
 * CPU per publish of the core's path and an adapter's mapping, no I/O:
 * `node --conditions=source --expose-gc bench/profile/publish-cpu.ts [kafka|amqp|servicebus|pubsub|sqs]`.
 * A broker over a transport that maps each batch as the adapter does (Kafka `toRecord`, AMQP
 * `toEnvelope`, …) and accepts it at once, vs building the same records by hand as the bench's
 * raw side does (JSON, UTF-8, a UUID, the headers); 1,000 outstanding, as in K1 / A1; `oursb`:
 * the same 1,000 as one `publishBatch` of entries made off the clock, as the P4 bench's caller
 * holds them. Prints µs per message of each (median of ROUNDS).
 */
import { randomUUID } from 'node:crypto';
import { measure as amqpMeasure, routeOf, toEnvelope } from '../../adapters/amqp/wire.ts';
import { SqsTransport, toEntry } from '../../adapters/aws/transport.ts';
import { measureWire } from '../../adapters/aws/wire.ts';
import { measureServiceBus, toServiceBusMessage } from '../../adapters/azure/wire.ts';
import {
  measure as pubsubMeasure,
  validate as pubsubValidate,
  toAttributes,
} from '../../adapters/gcp/wire.ts';
import { measure as kafkaMeasure, toRecord } from '../../adapters/kafka/wire.ts';
import { Broker } from '../../src/broker.ts';
import type { Capabilities, OutgoingMessage, SendOutcome, Transport } from '../../src/transport.ts';

const platform = process.argv[2] ?? 'kafka';
const N = Number(process.env.N ?? 100_000);
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const body = { id: 0, text: 'x'.repeat(200), tags: ['a', 'b', 'c'] };
let sink = 0;

const MAPS: Record<string, (m: OutgoingMessage) => object> = {
  kafka: (m) => toRecord(m, 'bench'),
  amqp: (m) => toEnvelope(m, routeOf(m, 'cloudmom'), 1_700_000_000),
  servicebus: (m) => toServiceBusMessage(m),
  pubsub: (m) => ({ data: m.body, attributes: toAttributes(m) }),
  sqs: (m) => toEntry(m, '0', false),
};
const MEASURES: Record<string, (m: OutgoingMessage) => number> = {
  kafka: kafkaMeasure,
  amqp: amqpMeasure,
  servicebus: measureServiceBus,
  pubsub: pubsubMeasure,
  sqs: measureWire,
};
const map = MAPS[platform];
if (map === undefined) throw new Error(`platform: one of ${Object.keys(MAPS).join(', ')}`);
const sqsTransport = new SqsTransport({ queue: 'bench' }, false);
const caps: Capabilities = {
  name: platform,
  maxMessageBytes: 1_000_000,
  measure: MEASURES[platform]!,
  maxBatchMessages:
    platform === 'kafka' ? 500 : platform === 'servicebus' ? 4000 : platform === 'sqs' ? 10 : 100,
  maxBatchBytes: 4_000_000,
  batchLingerMs: 0,
  ordering: false,
  maxDelaySeconds: 0,
  nackDelay: false,
  deadLetter: 'copy',
  request: false,
  defaultReplyAllowList: [],
};
const transport = {
  capabilities: caps,
  validate:
    platform === 'pubsub'
      ? pubsubValidate
      : platform === 'sqs'
        ? (m: OutgoingMessage) => sqsTransport.validate(m)
        : undefined,
  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    sink += batch.map(map).length;
    return batch.map((m) => ({ ok: true, messageId: m.messageId }));
  },
  async open() {
    return [];
  },
  async close() {},
  isRetryable: () => false,
} as unknown as Transport;
class StubBroker extends Broker {
  constructor() {
    super(transport, { logger: false });
  }
}

async function ours(): Promise<void> {
  const b = new StubBroker();
  for (let i = 0; i < N; i += 1000) {
    const batch: Promise<string>[] = [];
    for (let j = i; j < i + 1000; j++) batch.push(b.publish({ ...body, id: j }, 'bench'));
    await Promise.all(batch);
  }
  await b.stop();
}

/** `publishBatch` of 1,000 entries at a time: answers the CPU µs spent inside its calls. */
async function oursBatch(): Promise<number> {
  const b = new StubBroker();
  let spent = 0;
  for (let i = 0; i < N; i += 1000) {
    const entries = Array.from({ length: 1000 }, (_, j) => ({
      body: { ...body, id: i + j },
      target: 'bench',
    }));
    const c0 = process.cpuUsage();
    await b.publishBatch(entries);
    const c = process.cpuUsage(c0);
    spent += c.user + c.system;
  }
  await b.stop();
  return spent;
}

/** What the raw anchor of each platform builds per message (bench/anchors.ts and the suites). */
const h = (s: string) => Buffer.from(s);
const RAW: Record<string, (k: number) => object> = {
  kafka: (k) => ({
    topic: 'bench',
    value: Buffer.from(JSON.stringify({ ...body, id: k })),
    headers: new Map([
      [h('target'), h('bench')],
      [h('content_type'), h('application/json')],
      [h('message_id'), h(randomUUID())],
    ]),
  }),
  amqp: (k) => ({
    body: Buffer.from(JSON.stringify({ ...body, id: k })),
    messageId: randomUUID(),
    contentType: 'application/json',
    headers: { target: 'bench' },
  }),
  servicebus: (k) => ({
    body: Buffer.from(JSON.stringify({ ...body, id: k })),
    messageId: randomUUID(),
    contentType: 'application/json',
    subject: 'bench',
  }),
  pubsub: (k) => ({
    data: Buffer.from(JSON.stringify({ ...body, id: k })),
    attributes: { target: 'bench', content_type: 'application/json', message_id: randomUUID() },
  }),
  sqs: (k) => ({
    Id: String(k % 10),
    MessageBody: JSON.stringify({ ...body, id: k }),
    MessageAttributes: {
      target: { DataType: 'String', StringValue: 'bench' },
      content_type: { DataType: 'String', StringValue: 'application/json' },
      message_id: { DataType: 'String', StringValue: randomUUID() },
    },
  }),
};

async function raw(): Promise<void> {
  const one = RAW[platform]!;
  for (let i = 0; i < N; i += 1000) {
    const sends: Promise<unknown>[] = [];
    for (let j = i; j < i + 1000; j += caps.maxBatchMessages) {
      const records = [];
      for (let k = j; k < Math.min(j + caps.maxBatchMessages, i + 1000); k++) records.push(one(k));
      sends.push(Promise.resolve(records.length));
    }
    await Promise.all(sends);
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
const per: Record<string, number[]> = { ours: [], oursb: [], raw: [] };
for (let r = 0; r < ROUNDS + 2; r++) {
  for (const [k, f] of [
    ['ours', ours],
    ['oursb', oursBatch],
    ['raw', raw],
  ] as const) {
    gc?.();
    const c0 = process.cpuUsage();
    // a run that times itself (oursb: only inside its publishBatch calls) answers its CPU µs
    const own = await f();
    const c = process.cpuUsage(c0);
    if (r >= 2) per[k]!.push((own ?? c.user + c.system) / N);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(
  platform,
  `ours ${med(per.ours!).toFixed(2)} µs/msg, oursb ${med(per.oursb!).toFixed(2)} µs/msg, raw ${med(per.raw!).toFixed(2)} µs/msg`,
  sink > 0 ? '' : '?',
);
