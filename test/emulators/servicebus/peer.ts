/**
 * A small Azure Service Bus peer for tests: an AMQP 1.0 server on `rhea` that speaks enough of
 * Service Bus for the unmodified `@azure/service-bus` client (7.9) connected with
 * `UseDevelopmentEmulator=true` (plain AMQP, port 5672, no TLS).
 *
 * What it does:
 * - SASL ANONYMOUS; the `$cbs` put-token exchange (every token is accepted with 202).
 * - Sender links to queues and topics; receiver links on queues, `topic/Subscriptions/name`
 *   and their `/$deadletterqueue` sub-queues; peek-lock (lock tokens from 16-byte delivery
 *   tags) and receive-and-delete.
 * - Settlement: `accepted` completes, `modified` abandons (or defers when
 *   `undeliverable_here`), `rejected` with `com.microsoft:dead-letter` dead-letters with
 *   `DeadLetterReason` / `DeadLetterErrorDescription` as application properties; settling
 *   after the lock expired fails with `com.microsoft:message-lock-lost`.
 * - Delivery count (AMQP header), max delivery count → dead-letter `MaxDeliveryCountExceeded`,
 *   lock expiry → redelivery, the annotations the client reads (`x-opt-sequence-number`,
 *   `x-opt-enqueued-time`, `x-opt-locked-until`, `x-opt-deadletter-source`).
 * - Batched sends (message format 0x80013700), `max_message_size` 262144 on sender attach and
 *   oversize messages rejected, a `message_id` for messages sent without one.
 * - Scheduled messages (`scheduledEnqueueTimeUtc` on send, and `scheduleMessages` /
 *   `cancelScheduledMessages`); topic subscriptions with correlation filters (config, or
 *   the client's rule manager: add / remove / list rules).
 * - Sessions on entities configured with `requiresSession`: `acceptSession(id)`,
 *   `acceptNextSession()` (waits for a session with messages), in-order delivery per
 *   session, session locks with expiry and renewal, session state.
 * - `$management`: renew-lock, peek, schedule, cancel-scheduled, update-disposition,
 *   receive-by-sequence-number (deferred messages), add-rule, remove-rule, enumerate-rules,
 *   renew-session-lock, get/set-session-state.
 *
 * What it does not do (see docs/azure-peer.md): transactions, duplicate
 * detection, SQL filters and rule actions beyond `1=1` / `1=0`, auto-forwarding, message
 * expiry to the dead-letter queue (expired messages are dropped), partitioning, quotas and
 * throttling, authorization (any token is accepted), TLS, the ATOM management API
 * (`ServiceBusAdministrationClient`), persistence. Unknown entities are created on first use
 * (Azure answers `amqp:not-found`) unless `autoCreate` is false.
 */

import { randomUUID } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import rhea from 'rhea';
import { EXAMPLE_CONFIG, type PeerConfig } from './config.ts';
import {
  type AmqpMessage,
  type Consumer,
  dotnetGuidOrder,
  entityPath,
  Namespace,
  PeerError,
  type RuleFilter,
  ruleFilter,
  type Store,
  type Stored,
  uuidBytes,
  uuidString,
} from './store.ts';

/** Source filter key of a session receiver (its value: the session id, or null for any). */
const SESSION_FILTER = 'com.microsoft:session-filter';

/** Largest message the peer accepts, as Service Bus Standard (256 KB). */
export const MAX_MESSAGE_SIZE = 262_144;
/** Message format of a batch of messages sent as one transfer. */
const BATCH_FORMAT = 0x80013700;

const { types } = rhea as any;
const outcomes = (rhea as any).message as {
  encode(m: AmqpMessage): Buffer;
  decode(b: Buffer): AmqpMessage;
  accepted(): any;
  rejected(o?: any): any;
  modified(o?: any): any;
};

export interface PeerOptions {
  /** Address to listen on. Default `127.0.0.2`. */
  readonly host?: string;
  /** Port. Default 5672 (the port the client uses with `UseDevelopmentEmulator=true`); 0 picks one. */
  readonly port?: number;
  /** Entities. Default `EXAMPLE_CONFIG`. */
  readonly config?: PeerConfig;
  /** Protocol log lines (link attach, errors; never message bodies). Default none. */
  readonly log?: (line: string) => void;
}

export interface RunningServiceBusPeer {
  readonly host: string;
  readonly port: number;
  /** A connection string for `new ServiceBusClient(connectionString)`. */
  readonly connectionString: string;
  /** The peer's state (tests may inspect it in-process). */
  readonly namespace: Namespace;
  close(): Promise<void>;
}

/** The connection string for a peer at host:port (the port is left out when it is 5672). */
export function peerConnectionString(host: string, port = 5672): string {
  const endpoint = port === 5672 ? `sb://${host}` : `sb://${host}:${port}`;
  return `Endpoint=${endpoint};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true`;
}

/**
 * Starts the peer in this process.
 *
 * @example
 * ```ts
 * const peer = await startServiceBusPeer({ port: 0 });
 * const client = new ServiceBusClient(peer.connectionString);
 * // ...
 * await client.close();
 * await peer.close();
 * ```
 */
export async function startServiceBusPeer(
  options: PeerOptions = {},
): Promise<RunningServiceBusPeer> {
  const host = options.host ?? '127.0.0.2';
  if (!/^127\./.test(host)) throw new Error(`the test peer listens on loopback only, not ${host}`);
  const log = options.log ?? (() => {});
  const namespace = new Namespace(options.config ?? EXAMPLE_CONFIG);
  const container = (rhea as any).create_container({
    id: 'cloudmom-servicebus-peer',
    treat_modified_as_released: false,
    autoaccept: false,
  });
  const connections = new Set<any>();
  const sockets = new Set<Socket>();
  /** Per connection: reply links by name and by target address. */
  const replyLinks = new WeakMap<object, Map<string, any>>();
  /** Receiver-side state of each of our sender links. */
  const outgoing = new WeakMap<object, LinkConsumer>();

  container.on('connection_open', (ctx: any) => {
    connections.add(ctx.connection);
    replyLinks.set(ctx.connection, new Map());
  });
  const dropConnection = (ctx: any) => {
    connections.delete(ctx.connection);
    for (const session of Object.values<any>(ctx.connection.local_channel_map ?? {})) {
      for (const link of Object.values<any>(session.links ?? {})) outgoing.get(link)?.detach();
    }
  };
  container.on('disconnected', dropConnection);
  container.on('connection_close', dropConnection);
  container.on('error', (e: Error) => log(`error: ${e.message}`));

  // The client attaches a receiver: we send to it (entity messages, or replies).
  container.on('sender_open', (ctx: any) => {
    const link = ctx.sender;
    echoTermini(link);
    const source: string = link.remote.attach.source?.address ?? '';
    const target: string = link.remote.attach.target?.address ?? '';
    const replies = replyLinks.get(ctx.connection)!;
    if (source === '$cbs' || source.endsWith('/$management')) {
      replies.set(link.name, link);
      if (target) replies.set(target, link);
      return;
    }
    const filter = link.remote.attach.source?.filter as Record<string, unknown> | undefined;
    const sessionful = filter !== undefined && filter !== null && SESSION_FILTER in filter;
    try {
      const resolved = namespace.resolve(source);
      if (resolved.kind === 'topic') {
        throw new PeerError(
          'amqp:not-allowed',
          `receive from a subscription, not topic '${source}'`,
        );
      }
      const store = resolved.store;
      if (store.options.requiresSession !== sessionful) {
        throw new PeerError(
          'amqp:not-allowed',
          store.options.requiresSession
            ? `'${store.path}' requires sessions: use a session receiver`
            : `'${store.path}' does not require sessions: use a plain receiver`,
        );
      }
      if (sessionful) {
        acceptSession(link, store, filter[SESSION_FILTER]);
        return;
      }
      const consumer = new LinkConsumer(link, store);
      outgoing.set(link, consumer);
      store.addConsumer(consumer);
      log(
        `receiver attached to ${store.path}${consumer.receiveAndDelete ? ' (receive-and-delete)' : ''}`,
      );
    } catch (e) {
      // As Service Bus: a refused session receiver sees no source (so no session id).
      if (sessionful) link.local.attach.source = undefined;
      refuseWith(link, e);
    }
  });

  /**
   * A session receiver: lock the session it names, or the next unlocked one with messages —
   * waiting (with the attach unanswered) up to the link's `com.microsoft:timeout`.
   */
  function acceptSession(link: any, store: Store, requested: unknown): void {
    const consumer = new LinkConsumer(link, store);
    const grant = (sessionId: string, until: number) => {
      consumer.sessionId = sessionId;
      link.set_source({
        ...link.remote.attach.source,
        filter: { [SESSION_FILTER]: sessionId },
      });
      link.local.attach.properties = {
        ...link.local.attach.properties,
        'com.microsoft:locked-until-utc': types.wrap_long(dotnetTicks(until)),
      };
      outgoing.set(link, consumer);
      store.addConsumer(consumer);
      log(`session receiver on ${store.path} holds session '${sessionId}'`);
    };
    const got = store.acquireSession(
      requested === undefined || requested === null ? undefined : String(requested),
      consumer,
    );
    if (got) {
      grant(got.sessionId, got.until);
      return;
    }
    // Nothing to lock yet: hold the attach answer back (rhea opened the link already).
    link.state.local_open = false;
    link.state.open_requests = 0;
    const timeoutMs = Math.min(
      Number(link.remote.attach.properties?.['com.microsoft:timeout'] ?? 60_000),
      60_000,
    );
    const timer = setTimeout(() => {
      stop();
      if (!link.is_remote_open()) return; // the client gave up first
      link.open();
      link.close({
        condition: 'com.microsoft:timeout',
        description: `no unlocked session with messages in ${store.path} within ${timeoutMs} ms`,
      });
    }, timeoutMs);
    timer.unref();
    const stop = store.waitForSession((sessionId) => {
      if (!link.is_remote_open()) {
        clearTimeout(timer);
        return false;
      }
      const g = store.acquireSession(sessionId, consumer);
      if (!g) return false;
      clearTimeout(timer);
      grant(g.sessionId, g.until);
      link.open();
      return true;
    });
  }

  container.on('sendable', (ctx: any) => outgoing.get(ctx.sender)?.store.pump());
  container.on('sender_draining', (ctx: any) => {
    const consumer = outgoing.get(ctx.sender);
    consumer?.store.pump();
    ctx.sender.set_drained(true);
  });
  container.on('sender_close', (ctx: any) => {
    outgoing.get(ctx.sender)?.detach();
    const replies = replyLinks.get(ctx.connection);
    for (const [k, v] of replies ?? []) if (v === ctx.sender) replies!.delete(k);
  });
  container.on('accepted', (ctx: any) => settle(ctx, 'complete'));
  container.on('released', (ctx: any) => settle(ctx, 'abandon'));
  container.on('modified', (ctx: any) => settle(ctx, 'modified'));
  container.on('rejected', (ctx: any) => settle(ctx, 'rejected'));

  function settle(ctx: any, how: 'complete' | 'abandon' | 'modified' | 'rejected'): void {
    const consumer = outgoing.get(ctx.sender);
    const delivery = ctx.delivery;
    if (!consumer || consumer.receiveAndDelete) return;
    const token = uuidString(dotnetGuidOrder(Buffer.from(delivery.tag)));
    const store = consumer.store;
    const state = delivery.remote_state ?? {};
    let ok: boolean;
    let reply = outcomes.accepted();
    if (how === 'complete') {
      ok = store.complete(token);
    } else if (how === 'abandon') {
      ok = store.release(token, undefined);
      reply = outcomes.modified({ undeliverable_here: false });
    } else if (how === 'modified') {
      const props = state.message_annotations as Record<string, unknown> | undefined;
      ok = state.undeliverable_here ? store.defer(token, props) : store.release(token, props);
      reply = outcomes.modified({ undeliverable_here: Boolean(state.undeliverable_here) });
    } else {
      const info = (state.error?.info ?? {}) as Record<string, unknown>;
      const { DeadLetterReason, DeadLetterErrorDescription, ...rest } = info;
      ok = store.deadLetterLocked(
        token,
        str(DeadLetterReason),
        str(DeadLetterErrorDescription),
        rest,
      );
      reply = outcomes.rejected();
    }
    if (!ok) {
      reply = outcomes.rejected({
        error: {
          condition: 'com.microsoft:message-lock-lost',
          description: `The lock supplied is invalid: it expired, or the message was already settled (${store.path}).`,
        },
      });
    }
    answerSettlement(ctx.connection, delivery, reply);
  }

  /**
   * rhea 3.0.5 writes the dispositions of one tick as ranges and merges consecutive deliveries
   * even when their outcomes differ (`write_dispositions` compares outcomes only once a range
   * has two members). So answers of different kinds go out in separate ticks.
   */
  const settleQueues = new WeakMap<object, { delivery: any; outcome: any; kind: string }[]>();
  function answerSettlement(connection: object, delivery: any, outcome: any): void {
    const kind = `${outcome.constructor?.composite_type ?? ''}:${outcome.error?.condition ?? ''}`;
    let queue = settleQueues.get(connection);
    if (!queue) {
      queue = [];
      settleQueues.set(connection, queue);
    }
    queue.push({ delivery, outcome, kind });
    if (queue.length === 1) setImmediate(flush);
    function flush() {
      const head = queue![0];
      if (!head) return;
      while (queue![0]?.kind === head.kind) {
        const item = queue!.shift()!;
        item.delivery.update(true, item.outcome.described());
        // The client does not settle again after our answer (it is done once we settled), so
        // rhea would keep the delivery and stop sending on this session after 2048 of them
        // ("Next pending delivery not found"): it is settled on both ends now.
        item.delivery.remote_settled = true;
      }
      if (queue!.length > 0) setImmediate(flush);
    }
  }

  // The client attaches a sender: it sends to an entity, `$cbs` or `$management`.
  container.on('receiver_open', (ctx: any) => {
    const link = ctx.receiver;
    echoTermini(link);
    const target: string = link.remote.attach.target?.address ?? '';
    link.local.attach.max_message_size = MAX_MESSAGE_SIZE;
    if (target === '$cbs' || target.endsWith('/$management')) return;
    try {
      const resolved = namespace.resolve(target);
      if (resolved.kind !== 'queue' && resolved.kind !== 'topic') {
        throw new PeerError('amqp:not-allowed', `cannot send to '${entityPath(target)}'`);
      }
      log(`sender attached to ${entityPath(target)}`);
    } catch (e) {
      refuseWith(link, e);
    }
  });

  container.on('message', (ctx: any) => {
    const link = ctx.receiver;
    const delivery = ctx.delivery;
    const target: string = link.remote.attach.target?.address ?? '';
    try {
      if (target === '$cbs') {
        answer(ctx, ctx.message, 202, 'Accepted', {});
        answerSettlement(ctx.connection, delivery, outcomes.accepted());
        return;
      }
      if (target.endsWith('/$management')) {
        const entity = target.slice(0, -'/$management'.length);
        let status = 200;
        let body: unknown;
        let condition: string | undefined;
        let description = 'OK';
        try {
          const r = manage(entity, ctx.message);
          status = r.status;
          body = r.body;
        } catch (e) {
          const err =
            e instanceof PeerError ? e : new PeerError('amqp:internal-error', String(e), 500);
          status = err.status;
          condition = err.condition;
          description = err.message;
          log(`management ${ctx.message.application_properties?.operation}: ${description}`);
        }
        answer(ctx, ctx.message, status, description, body, condition);
        answerSettlement(ctx.connection, delivery, outcomes.accepted());
        return;
      }
      const raw: Buffer | undefined = ctx.format === BATCH_FORMAT ? ctx.message : undefined;
      const messages = ctx.format === BATCH_FORMAT ? unbatch(raw!) : [ctx.message as AmqpMessage];
      const size = raw ? raw.length : outcomes.encode(ctx.message).length;
      if (size > MAX_MESSAGE_SIZE) {
        throw new PeerError(
          'amqp:link:message-size-exceeded',
          `The received message (size ${size} bytes) exceeds the limit of ${MAX_MESSAGE_SIZE} bytes.`,
        );
      }
      for (const m of messages) {
        if (m.message_id === undefined || m.message_id === null)
          m.message_id = randomUUID().replace(/-/g, '');
        namespace.send(target, m);
      }
      answerSettlement(ctx.connection, delivery, outcomes.accepted());
    } catch (e) {
      const err = e instanceof PeerError ? e : new PeerError('amqp:internal-error', String(e));
      log(`send to ${target} refused: ${err.message}`);
      answerSettlement(
        ctx.connection,
        delivery,
        outcomes.rejected({ error: { condition: err.condition, description: err.message } }),
      );
    }
  });

  /** Sends a request/response answer on the link the request's `reply_to` names. */
  function answer(
    ctx: any,
    request: AmqpMessage,
    status: number,
    description: string,
    body: unknown,
    condition?: string,
  ): void {
    const link = replyLinks.get(ctx.connection)?.get(request.reply_to);
    if (!link) {
      log(`no reply link '${request.reply_to}'`);
      return;
    }
    const props: Record<string, unknown> = {
      statusCode: status,
      'status-code': status,
      statusDescription: description,
      'status-description': description,
    };
    if (condition) {
      props.errorCondition = condition;
      props['error-condition'] = condition;
    }
    link.send({
      correlation_id: request.message_id,
      application_properties: props,
      body: body === undefined ? undefined : body,
    });
  }

  /** `$management` operations on an entity. */
  function manage(entity: string, request: AmqpMessage): { status: number; body?: unknown } {
    const op = String(request.application_properties?.operation ?? '');
    const body = (request.body ?? {}) as Record<string, any>;
    const resolved = namespace.resolve(entity);
    const store = 'store' in resolved ? resolved.store : undefined;
    const needStore = (): Store => {
      if (!store) throw new PeerError('amqp:not-allowed', `'${entity}' holds no messages`, 400);
      return store;
    };
    switch (op) {
      case 'com.microsoft:renew-lock': {
        const s = needStore();
        const expirations = tokens(body['lock-tokens']).map((t) => {
          const until = s.renew(t);
          if (until === undefined) {
            throw new PeerError('com.microsoft:message-lock-lost', `lock ${t} is lost`, 410);
          }
          return new Date(until);
        });
        return { status: 200, body: { expirations } };
      }
      case 'com.microsoft:renew-session-lock': {
        const id = String(body['session-id']);
        const until = needStore().renewSession(id);
        if (until === undefined) {
          throw new PeerError(
            'com.microsoft:session-lock-lost',
            `session '${id}' is not locked`,
            410,
          );
        }
        return { status: 200, body: { expiration: new Date(until) } };
      }
      case 'com.microsoft:get-session-state': {
        const state = needStore().getSessionState(String(body['session-id']));
        return { status: 200, body: { 'session-state': state ?? null } };
      }
      case 'com.microsoft:set-session-state': {
        const state = body['session-state'];
        needStore().setSessionState(
          String(body['session-id']),
          state === undefined || state === null ? undefined : Buffer.from(state),
        );
        return { status: 200, body: {} };
      }
      case 'com.microsoft:peek-message': {
        const from = longValue(body['from-sequence-number']);
        const count = Number(body['message-count'] ?? 1);
        const found = needStore().peek(from, count);
        if (found.length === 0) return { status: 204, body: {} };
        return {
          status: 200,
          body: { messages: found.map((s) => ({ message: outcomes.encode(toWire(s)) })) },
        };
      }
      case 'com.microsoft:schedule-message': {
        const seqs = (body.messages ?? []).map((entry: any) => {
          const m = outcomes.decode(Buffer.from(entry.message));
          if (m.message_id === undefined) m.message_id = entry['message-id'] ?? randomUUID();
          return types.wrap_long(namespace.send(entity, m));
        });
        return { status: 200, body: { 'sequence-numbers': seqs } };
      }
      case 'com.microsoft:cancel-scheduled-message': {
        for (const seq of body['sequence-numbers'] ?? []) namespace.cancelScheduled(longValue(seq));
        return { status: 200, body: {} };
      }
      case 'com.microsoft:update-disposition': {
        const s = needStore();
        const status = String(body['disposition-status']);
        for (const t of tokens(body['lock-tokens'])) {
          const props = body['properties-to-modify'] as Record<string, unknown> | undefined;
          const ok =
            status === 'completed'
              ? s.complete(t)
              : status === 'abandoned'
                ? s.release(t, props)
                : status === 'defered' || status === 'deferred'
                  ? s.defer(t, props)
                  : s.deadLetterLocked(
                      t,
                      str(body['deadletter-reason']),
                      str(body['deadletter-description']),
                      props,
                    );
          if (!ok) throw new PeerError('com.microsoft:message-lock-lost', `lock ${t} is lost`, 410);
        }
        return { status: 200, body: {} };
      }
      case 'com.microsoft:receive-by-sequence-number': {
        const seqs = (body['sequence-numbers'] ?? []).map(longValue);
        const receiveAndDelete = Number(body['receiver-settle-mode']) === 0;
        const taken = needStore().takeDeferred(seqs, receiveAndDelete);
        return {
          status: 200,
          body: {
            messages: taken.map(({ stored, token }) => ({
              'lock-token': types.wrap_uuid(uuidBytes(token)),
              message: outcomes.encode(toWire(stored)),
            })),
          },
        };
      }
      case 'com.microsoft:add-rule': {
        if (resolved.kind !== 'subscription')
          throw new PeerError('amqp:not-allowed', 'rules need a subscription');
        const name = String(body['rule-name']);
        if (resolved.store.rules.has(name)) {
          throw new PeerError('com.microsoft:entity-already-exists', `rule '${name}' exists`, 409);
        }
        resolved.store.rules.set(name, parseRule(body['rule-description'] ?? {}));
        return { status: 200, body: {} };
      }
      case 'com.microsoft:remove-rule': {
        if (resolved.kind !== 'subscription')
          throw new PeerError('amqp:not-allowed', 'rules need a subscription');
        const name = String(body['rule-name']);
        if (!resolved.store.rules.delete(name)) {
          throw new PeerError('com.microsoft:message-not-found', `no rule '${name}'`, 404);
        }
        return { status: 200, body: {} };
      }
      case 'com.microsoft:enumerate-rules': {
        if (resolved.kind !== 'subscription')
          throw new PeerError('amqp:not-allowed', 'rules need a subscription');
        const skip = Number(body.skip ?? 0);
        const top = Number(body.top ?? 2 ** 31 - 1);
        const rules = [...resolved.store.rules]
          .slice(skip, skip + top)
          .map(([name, rule]) => ({ 'rule-description': describeRule(name, rule) }));
        if (rules.length === 0) return { status: 204, body: {} };
        return { status: 200, body: { rules } };
      }
      default:
        throw new PeerError(
          'amqp:not-implemented',
          `the test peer does not implement '${op}'`,
          501,
        );
    }
  }

  const server: Server = container.listen({ host, port: options.port ?? 5672 });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  log(`listening on ${host}:${port}`);

  return {
    host,
    port,
    connectionString: peerConnectionString(host, port),
    namespace,
    async close() {
      for (const c of connections) {
        try {
          c.close();
        } catch {}
      }
      await new Promise((r) => setTimeout(r, 50));
      for (const s of sockets) s.destroy();
      namespace.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One receiver link of the client, taking messages from a store. */
class LinkConsumer implements Consumer {
  readonly link: any;
  readonly store: Store;
  readonly receiveAndDelete: boolean;
  sessionId?: string;
  /** Sends queued since rhea last transmitted (its credit counts down only when it does). */
  private queued = 0;
  private detached = false;

  constructor(link: any, store: Store) {
    this.link = link;
    this.store = store;
    this.receiveAndDelete = link.remote.attach.snd_settle_mode === 1;
    link.local.attach.snd_settle_mode = link.remote.attach.snd_settle_mode;
    link.local.attach.rcv_settle_mode = link.remote.attach.rcv_settle_mode;
  }

  credit(): number {
    if (this.detached || !this.link.is_open()) return 0;
    return this.link.credit - this.queued;
  }

  deliver(stored: Stored, lockToken: string): void {
    this.queued++;
    if (this.queued === 1) {
      setImmediate(() => {
        this.queued = 0;
        this.store.pump();
      });
    }
    const tag = dotnetGuidOrder(uuidBytes(lockToken));
    this.link.send(toWire(stored), tag);
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.store.removeConsumer(this);
    // Closing a session receiver gives up its session; its unsettled messages come back.
    if (this.sessionId !== undefined) this.store.releaseSession(this.sessionId);
  }

  sessionLost(): void {
    if (this.detached) return;
    this.detached = true;
    this.store.removeConsumer(this);
    this.link.close({
      condition: 'com.microsoft:session-lock-lost',
      description: `The session lock has expired on the session with id ${this.sessionId}.`,
    });
  }
}

/** A time as .NET ticks (100 ns since 0001-01-01), big-endian, as Service Bus sends them. */
function dotnetTicks(ms: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(ms) * 10_000n + 621_355_968_000_000_000n);
  return b;
}

/** The message as the receiver gets it: header delivery count and broker annotations. */
function toWire(stored: Stored): AmqpMessage {
  const annotations: Record<string, unknown> = {
    ...stored.message.message_annotations,
    'x-opt-sequence-number': types.wrap_long(stored.seq),
    'x-opt-enqueued-time': new Date(stored.enqueuedAt),
  };
  if (stored.lockedUntil !== undefined)
    annotations['x-opt-locked-until'] = new Date(stored.lockedUntil);
  if (stored.state === 'deferred') annotations['x-opt-message-state'] = types.wrap_int(1);
  return {
    ...stored.message,
    delivery_count: Math.max(0, stored.deliveries - 1),
    message_annotations: annotations,
  };
}

/** A batch transfer: its data sections are encoded messages. */
function unbatch(raw: Buffer): AmqpMessage[] {
  const outer = outcomes.decode(raw);
  const body = outer.body;
  const parts: Buffer[] = body?.multiple ? body.content : body?.content ? [body.content] : [];
  return parts.map((p) => outcomes.decode(Buffer.from(p)));
}

function echoTermini(link: any): void {
  const remote = link.remote.attach;
  if (remote.source) link.set_source(remote.source);
  if (remote.target) link.set_target(remote.target);
}

function refuse(link: any, condition: string, description: string): void {
  link.close({ condition, description });
}

function refuseWith(link: any, e: unknown): void {
  const err = e instanceof PeerError ? e : new PeerError('amqp:internal-error', String(e));
  refuse(link, err.condition, err.message);
}

function tokens(list: unknown): string[] {
  return (Array.isArray(list) ? list : []).map((t) =>
    typeof t === 'string' ? t : uuidString(Buffer.from(t as Buffer)),
  );
}

function longValue(v: unknown): number {
  if (Buffer.isBuffer(v)) return Number(v.readBigInt64BE());
  if (typeof v === 'bigint') return Number(v);
  return Number(v ?? 0);
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : String(v);
}

/** A rule description from the client's rule manager (add-rule). */
function parseRule(description: Record<string, any>): RuleFilter {
  const c = description['correlation-filter'];
  if (c) {
    const props = c.properties ?? undefined;
    return ruleFilter({
      correlationId: c['correlation-id'] ?? undefined,
      messageId: c['message-id'] ?? undefined,
      to: c.to ?? undefined,
      replyTo: c['reply-to'] ?? undefined,
      subject: c.label ?? undefined,
      sessionId: c['session-id'] ?? undefined,
      replyToSessionId: c['reply-to-session-id'] ?? undefined,
      contentType: c['content-type'] ?? undefined,
      applicationProperties: props,
    });
  }
  const sql = String(description['sql-filter']?.expression ?? '1=1').replace(/\s+/g, '');
  if (sql === '1=1' || sql.toLowerCase() === 'true') return { kind: 'true' };
  if (sql === '1=0' || sql.toLowerCase() === 'false') return { kind: 'false' };
  throw new PeerError(
    'amqp:not-implemented',
    `the test peer evaluates no SQL filters ('${sql}')`,
    501,
  );
}

/** A rule as `enumerate-rules` answers it (AMQP described lists; codes as the client knows them). */
function describeRule(name: string, rule: RuleFilter): unknown {
  const described = (code: number, list: unknown[]) =>
    types.described(types.wrap_ulong(code), types.wrap_list(list));
  const s = (v: string | undefined) => (v === undefined ? null : types.wrap_string(v));
  let filter: unknown;
  if (rule.kind === 'true') filter = described(83483426823, []);
  else if (rule.kind === 'false') filter = described(83483426824, []);
  else {
    const f = rule.filter;
    filter = described(83483426825, [
      s(f.correlationId),
      s(f.messageId),
      s(f.to),
      s(f.replyTo),
      s(f.subject),
      s(f.sessionId),
      s(f.replyToSessionId),
      s(f.contentType),
      types.wrap_map(f.applicationProperties ?? {}),
    ]);
  }
  // [filter, action (empty rule action), name]
  return described(1335734829060, [filter, described(1335734829061, []), types.wrap_string(name)]);
}
