/**
 * The AMQP 1.0 encoding of the messages cloudmom sends to Service Bus, written here instead of
 * by the SDK for each message of a link batch. `tryAddMessage` converts a `ServiceBusMessage`
 * to rhea's form and encodes it with rhea's generic writer: ~6 µs of the ~18 µs of client CPU a
 * ~0.5 KB message costs in all (bench/profile/publish-client.ts); this encoder writes the same
 * bytes in a fraction of that (docs/azure.md, "Limits").
 *
 * What it writes is what `toRheaMessage` + rhea's `message.encode` give for the fields
 * `toServiceBusMessage` sets (@azure/service-bus 7.x, rhea 3.x): an empty header section, the
 * message annotations (always written, empty but for a scheduled enqueue time), the properties
 * list up to its last field set, the application properties (strings) and one data section.
 * Anything else (another field, another type, an id the SDK would refuse) gets `undefined`,
 * and the SDK encodes that message itself.
 *
 * {@link LinkBatchWriter} puts these bytes into the SDK's batch, which is not a public API: it
 * lets the SDK add the first message of every link batch and compares that message's bytes
 * with its own, and writes the rest only when they are equal, the SDK made no tracing span for
 * the message and the batch has the fields it writes to. Bytes that differ turn it off for
 * good (another SDK version): the SDK then encodes everything, as before.
 */
import type { ServiceBusMessage, ServiceBusMessageBatch } from '@azure/service-bus';

/** The keys of a `ServiceBusMessage` this encoder writes; any other key: left to the SDK. */
const KNOWN = new Set([
  'body',
  'messageId',
  'contentType',
  'subject',
  'replyTo',
  'correlationId',
  'sessionId',
  'replyToSessionId',
  'scheduledEnqueueTimeUtc',
  'applicationProperties',
]);

/** The properties list's fields cloudmom sets, by their index in the list (AMQP 1.0 §3.2.4). */
const FIELDS = [
  ['messageId', 0, false],
  ['subject', 3, false],
  ['replyTo', 4, false],
  ['correlationId', 5, false],
  ['contentType', 6, true],
  ['sessionId', 10, false],
  ['replyToSessionId', 12, false],
] as const;

/** Longest message and session id the SDK takes (characters). */
const MAX_ID = 128;

/** The annotation key of a scheduled message. */
const SCHEDULED = Buffer.from('x-opt-scheduled-enqueue-time');

/** A field of the properties list: its text, or `undefined` for an absent one (an AMQP null). */
type Text = string | undefined;

/**
 * The AMQP bytes of `m` as the SDK would encode it, or `undefined` when `m` holds anything
 * this encoder does not write.
 *
 * @example
 * ```ts
 * const bytes = encodeServiceBusMessage({ body: Buffer.from('{}'), messageId: 'm1', subject: 't' });
 * bytes?.subarray(0, 4); // <00 53 70 45>: the header section, empty
 * ```
 */
export function encodeServiceBusMessage(m: ServiceBusMessage): Buffer | undefined {
  for (const k in m) if (!KNOWN.has(k)) return undefined;
  const body = m.body;
  if (!Buffer.isBuffer(body)) return undefined;
  // the properties list: its texts and their UTF-8 sizes by field index (scratch, reset here)
  const texts = TEXTS;
  const sizes = SIZES;
  texts.fill(undefined);
  let last = -1;
  for (const [key, index] of FIELDS) {
    const v = (m as unknown as Record<string, unknown>)[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return undefined;
    texts[index] = v;
    sizes[index] = Buffer.byteLength(v);
    last = index;
  }
  if ((texts[0]?.length ?? 0) > MAX_ID || (texts[10]?.length ?? 0) > MAX_ID) return undefined;
  let listBytes = 0;
  for (let i = 0; i <= last; i++) listBytes += texts[i] === undefined ? 1 : textBytes(sizes[i]!);
  let scheduled: number | undefined;
  if (m.scheduledEnqueueTimeUtc !== undefined && m.scheduledEnqueueTimeUtc !== null) {
    if (!(m.scheduledEnqueueTimeUtc instanceof Date)) return undefined;
    scheduled = m.scheduledEnqueueTimeUtc.getTime();
    if (!Number.isFinite(scheduled)) return undefined;
  }
  const props = m.applicationProperties;
  const hasProps = props !== undefined && props !== null;
  // the UTF-8 sizes of each property's name and value, in order (scratch, reset here)
  const propSizes = PROP_SIZES;
  propSizes.length = 0;
  let propBytes = 0;
  if (hasProps) {
    for (const k in props) {
      const v = props[k];
      if (typeof v !== 'string') return undefined;
      const kn = Buffer.byteLength(k);
      const vn = Buffer.byteLength(v);
      propSizes.push(kn, vn);
      propBytes += textBytes(kn) + textBytes(vn);
    }
  }
  const annotationBytes = scheduled === undefined ? 0 : 2 + SCHEDULED.length + 9;
  const total =
    4 + // header: 00 53 70, list0
    (12 + annotationBytes) + // message annotations: 00 53 72, map32
    (last < 0 ? 4 : 12 + listBytes) + // properties: 00 53 73, list32 (list0 when empty)
    (hasProps ? 12 + propBytes : 0) + // application properties: 00 53 74, map32
    (body.length > 255 ? 8 : 5) +
    body.length; // data: 00 53 75, vbin8 / vbin32
  const out = Buffer.allocUnsafe(total);
  let o = section(out, 0, 0x70);
  out[o++] = 0x45;
  o = compound(
    out,
    section(out, o, 0x72),
    0xd1,
    4 + annotationBytes,
    scheduled === undefined ? 0 : 2,
  );
  if (scheduled !== undefined) {
    out[o++] = 0xa3;
    out[o++] = SCHEDULED.length;
    o += SCHEDULED.copy(out, o);
    out[o++] = 0x83;
    out.writeBigInt64BE(BigInt(scheduled), o);
    o += 8;
  }
  o = section(out, o, 0x73);
  if (last < 0) out[o++] = 0x45;
  else {
    o = compound(out, o, 0xd0, 4 + listBytes, last + 1);
    for (let i = 0; i <= last; i++) {
      const t = texts[i];
      if (t === undefined) out[o++] = 0x40;
      else o = text(out, o, t, sizes[i]!, i === 6);
    }
  }
  if (hasProps) {
    o = compound(out, section(out, o, 0x74), 0xd1, 4 + propBytes, propSizes.length);
    let j = 0;
    for (const k in props) {
      o = text(out, o, k, propSizes[j++]!, false);
      o = text(out, o, props[k] as string, propSizes[j++]!, false);
    }
  }
  o = section(out, o, 0x75);
  if (body.length > 255) {
    out[o] = 0xb0;
    out.writeUInt32BE(body.length, o + 1);
    o += 5;
  } else {
    out[o++] = 0xa0;
    out[o++] = body.length;
  }
  o += body.copy(out, o);
  return o === total ? out : undefined;
}

const TEXTS: Text[] = new Array(13);
const SIZES: number[] = new Array(13).fill(0);
const PROP_SIZES: number[] = [];

/** Bytes of an AMQP string or symbol of `n` UTF-8 bytes: str8 / sym8 up to 255, else 32-bit. */
function textBytes(n: number): number {
  return n + (n > 255 ? 5 : 2);
}

/** Writes a section's descriptor (`00 53 code`, a small ulong); answers the next offset. */
function section(out: Buffer, o: number, code: number): number {
  out[o] = 0x00;
  out[o + 1] = 0x53;
  out[o + 2] = code;
  return o + 3;
}

/** Writes a list32 / map32 constructor with its size and count; answers the next offset. */
function compound(out: Buffer, o: number, code: number, size: number, count: number): number {
  out[o] = code;
  out.writeUInt32BE(size, o + 1);
  out.writeUInt32BE(count, o + 5);
  return o + 9;
}

/** Writes `s` (`n` UTF-8 bytes) as str8 / str32, or sym8 / sym32; answers the next offset. */
function text(out: Buffer, o: number, s: string, n: number, symbol: boolean): number {
  if (n > 255) {
    out[o] = symbol ? 0xb3 : 0xb1;
    out.writeUInt32BE(n, o + 1);
    o += 5;
  } else {
    out[o] = symbol ? 0xa3 : 0xa1;
    out[o + 1] = n;
    o += 2;
  }
  return o + out.write(s, o, n, 'utf8');
}

/** The fields of the SDK's batch (`ServiceBusMessageBatchImpl`, 7.x) the writer uses. */
interface BatchFields {
  _encodedMessages: Buffer[];
  _sizeInBytes: number;
  _maxSizeInBytes: number;
  _spanContexts: unknown[];
}

/** A link batch being filled, and whether its messages after the first may be written here. */
export interface LinkBatch {
  readonly batch: ServiceBusMessageBatch;
  own: boolean;
}

/**
 * Adds messages to the SDK's link batches, encoding them with {@link encodeServiceBusMessage}
 * where it is safe (see the module doc) and through `tryAddMessage` otherwise. Its `onMismatch`
 * is called once, when bytes of its own first differ from the SDK's.
 *
 * @example
 * ```ts
 * const writer = new LinkBatchWriter(() => logger.debug('encoding left to the SDK'));
 * const link = { batch: await sender.createMessageBatch(), own: false };
 * if (!writer.tryAdd(link, native)) await sender.sendMessages(link.batch); // full
 * ```
 */
export class LinkBatchWriter {
  #off = false;
  readonly #onMismatch: () => void;

  constructor(onMismatch: () => void) {
    this.#onMismatch = onMismatch;
  }

  /** As `batch.tryAddMessage(native)`: false when the batch is full. */
  tryAdd(link: LinkBatch, native: ServiceBusMessage): boolean {
    if (link.own && !this.#off) {
      const bytes = encodeServiceBusMessage(native);
      if (bytes !== undefined) {
        const b = link.batch as unknown as BatchFields;
        // the SDK's accounting: a message's bytes plus its data section's framing in the batch
        const size = b._sizeInBytes + bytes.length + (bytes.length <= 255 ? 5 : 8);
        if (size > b._maxSizeInBytes) return false;
        b._encodedMessages.push(bytes);
        b._sizeInBytes = size;
        return true;
      }
    }
    if (!link.batch.tryAddMessage(native)) return false;
    if (!this.#off && link.batch.count === 1) link.own = this.#check(link.batch, native);
    return true;
  }

  /** True when the SDK's bytes of a batch's first message are this encoder's. */
  #check(batch: ServiceBusMessageBatch, native: ServiceBusMessage): boolean {
    const b = batch as unknown as Partial<BatchFields>;
    if (
      !Array.isArray(b._encodedMessages) ||
      b._encodedMessages.length !== 1 ||
      typeof b._sizeInBytes !== 'number' ||
      typeof b._maxSizeInBytes !== 'number' ||
      !Array.isArray(b._spanContexts)
    ) {
      this.#turnOff();
      return false;
    }
    // a span made for the message: the SDK traces each message, and only it can
    if (b._spanContexts.length > 0) return false;
    const ours = encodeServiceBusMessage(native);
    if (ours === undefined) return false;
    if (!ours.equals(b._encodedMessages[0]!)) {
      this.#turnOff();
      return false;
    }
    return true;
  }

  #turnOff(): void {
    this.#off = true;
    this.#onMismatch();
  }
}
