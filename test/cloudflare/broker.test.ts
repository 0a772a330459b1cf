/**
 * CloudflareQueueBroker's options and error classification (no queue needed: nothing is sent;
 * the placeholder binding refuses every call). Sending is tested in workerd (entrypoint.test.ts).
 */
import { CloudflareQueueBroker, type QueueBinding } from 'cloudmom/cloudflare';
import { describe, expect, it } from 'vitest';
import { CloudflareQueueTransport, DEAD_LETTER_ADDRESS } from '../../adapters/cloudflare/broker.ts';
import { InvalidArgumentError, InvalidMessageError } from '../../src/errors.ts';

const unused: QueueBinding = {
  send: () => Promise.reject(new Error('not used')),
  sendBatch: () => Promise.reject(new Error('not used')),
};

describe('CloudflareQueueBroker options', () => {
  it('needs a producer binding as queue; refuses unknown keys and bad bindings', () => {
    expect(() => new CloudflareQueueBroker({} as never)).toThrow(InvalidArgumentError);
    expect(() => new CloudflareQueueBroker({ queue: 'orders' } as never)).toThrow(
      /producer binding/,
    );
    expect(
      () => new CloudflareQueueBroker({ queue: unused, deadLetterQeue: unused } as never),
    ).toThrow(/unknown option "deadLetterQeue"/);
    expect(
      () => new CloudflareQueueBroker({ queue: unused, deadLetterQueue: {} as never }),
    ).toThrow(/deadLetterQueue/);
    expect(
      () => new CloudflareQueueBroker({ queue: unused, replyQueues: { r: 1 } as never }),
    ).toThrow(/replyQueues\["r"\]/);
    expect(
      () =>
        new CloudflareQueueBroker({
          queue: unused,
          replyQueues: { [DEAD_LETTER_ADDRESS]: unused },
        }),
    ).toThrow(InvalidArgumentError);
    expect(() => new CloudflareQueueBroker({ queue: unused, queueName: '' })).toThrow(/queueName/);
  });

  it('client is the queue binding; capabilities say copy dead letters, no request, no ordering', () => {
    const b = new CloudflareQueueBroker({
      queue: unused,
      replyQueues: { 'cloudmom-replies': unused },
      logger: false,
    });
    expect(b.client).toBe(unused);
    expect(b.queueName).toBe('queue');
    expect(b.capabilities).toMatchObject({
      name: 'cloudflare-queues',
      maxMessageBytes: 128_000,
      maxBatchMessages: 100, // Node has setImmediate
      maxBatchBytes: 256_000,
      maxDelaySeconds: 43_200,
      nackDelay: true,
      deadLetter: 'copy',
      request: false,
      ordering: false,
      defaultReplyAllowList: ['cloudmom-replies'],
    });
  });

  it('a destination without a binding is refused before sending', () => {
    const t = new CloudflareQueueTransport({ queue: unused, replyQueues: { replies: unused } });
    const m = {
      body: new Uint8Array(),
      target: 'reply',
      messageId: 'm',
      contentType: 'application/json',
      headers: {},
    };
    expect(() => t.validate({ ...m, destination: 'elsewhere' })).toThrow(InvalidMessageError);
    expect(() => t.validate({ ...m, destination: 'replies' })).not.toThrow();
    expect(() => t.validate({ ...m, destination: DEAD_LETTER_ADDRESS })).not.toThrow();
  });

  it('isRetryable: throttling and internal errors yes; refusals no', () => {
    const t = new CloudflareQueueTransport({ queue: unused });
    for (const m of [
      'Queue send failed: Too Many Requests',
      'Unknown Internal Error (15000)',
      'Network connection lost.',
    ])
      expect(t.isRetryable(new Error(m)), m).toBe(true);
    for (const m of [
      'Queue sendBatch failed: Payload Too Large',
      'message content type x is invalid',
    ])
      expect(t.isRetryable(new Error(m)), m).toBe(false);
  });
});
