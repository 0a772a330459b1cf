/**
 * Test plumbing for the entrypoints: the real functions-framework server for a registered
 * function, listening on 127.0.0.1, and a stand-in for Eventarc / push delivery (pstest has
 * no push): it streams a pstest subscription, POSTs each message to a URL as a CloudEvent
 * (binary or structured mode) or a push request, and acks on 2xx, nacks otherwise — as
 * Pub/Sub does with a push endpoint.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Message, PubSub } from '@google-cloud/pubsub';
import { MESSAGE_PUBLISHED } from 'cloudmom/gcp';
import { PROJECT } from './fixture.ts';

export interface Served {
  readonly url: string;
  close(): Promise<void>;
}

export async function listen(server: Server): Promise<Served> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** The functions-framework's own Express server for a function registered by name. */
export function serveFunction(name: string): Promise<Served> {
  return listen(getTestServer(name));
}

export interface WireMessageJson {
  data?: unknown;
  attributes?: unknown;
  messageId?: unknown;
  publishTime?: unknown;
  orderingKey?: unknown;
  [k: string]: unknown;
}

export type Mode = 'binary' | 'structured' | 'push';

/** POSTs one message (or any envelope) the way Eventarc or a push subscription would. */
export function post(
  url: string,
  mode: Mode,
  message: WireMessageJson | undefined,
  extra: { topic?: string; subscription?: string; deliveryAttempt?: unknown; raw?: unknown } = {},
): Promise<Response> {
  const envelope =
    extra.raw !== undefined
      ? extra.raw
      : {
          message,
          subscription: `projects/${PROJECT}/subscriptions/${extra.subscription ?? 'sub'}`,
          ...(extra.deliveryAttempt !== undefined
            ? { deliveryAttempt: extra.deliveryAttempt }
            : {}),
        };
  const id = typeof message?.messageId === 'string' ? message.messageId : 'event-1';
  const source = `//pubsub.googleapis.com/projects/${PROJECT}/topics/${extra.topic ?? 'topic'}`;
  if (mode === 'push')
    return fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(envelope),
    });
  if (mode === 'binary')
    return fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-type': MESSAGE_PUBLISHED,
        'ce-source': source,
        'ce-id': id,
        'ce-time': new Date().toISOString(),
      },
      body: JSON.stringify(envelope),
    });
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({
      specversion: '1.0',
      type: MESSAGE_PUBLISHED,
      source,
      id,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: envelope,
    }),
  });
}

/** The JSON form of a received message, as Pub/Sub writes it in push requests and events. */
export function toJson(m: Message): WireMessageJson {
  return {
    data: m.data.toString('base64'),
    attributes: { ...m.attributes },
    messageId: m.id,
    publishTime: m.publishTime.toISOString(),
    ...(m.orderingKey ? { orderingKey: m.orderingKey } : {}),
  };
}

/** Streams `subscription` and delivers each message to `url`; returns a stop function. */
export function bridge(
  client: PubSub,
  subscription: string,
  url: string,
  mode: Mode,
): { statuses: number[]; stop(): Promise<void> } {
  const sub = client.subscription(subscription, {
    flowControl: { maxMessages: 20 },
    batching: { maxMilliseconds: 10 },
  });
  const statuses: number[] = [];
  const onMessage = async (m: Message) => {
    try {
      const res = await post(url, mode, toJson(m), {
        subscription,
        deliveryAttempt: mode === 'push' && m.deliveryAttempt > 0 ? m.deliveryAttempt : undefined,
      });
      statuses.push(res.status);
      await res.arrayBuffer();
      if (res.ok) m.ack();
      else m.nack();
    } catch {
      m.nack();
    }
  };
  sub.on('message', onMessage);
  sub.on('error', () => {});
  return {
    statuses,
    async stop() {
      sub.removeListener('message', onMessage);
      await sub.close().catch(() => {});
    },
  };
}
