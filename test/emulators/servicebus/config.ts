/**
 * Entity configuration of the Service Bus test peer: which queues, topics and subscriptions
 * exist when it starts, and how entities it creates on demand are set up.
 */

/** Per-entity settings (a queue or a subscription). Defaults are Azure's. */
export interface EntityOptions {
  /** Peek-lock duration. Default 60 000 ms (Azure's default, 1 minute). */
  readonly lockDurationMs?: number;
  /** Deliveries before a message is dead-lettered with `MaxDeliveryCountExceeded`. Default 10. */
  readonly maxDeliveryCount?: number;
  /** Messages are received through sessions only (by `sessionId`, in order). Default false. */
  readonly requiresSession?: boolean;
}

/**
 * Equality filter on system and application properties, as Service Bus's
 * `CorrelationRuleFilter`: every field that is set must match.
 */
export interface CorrelationFilter {
  readonly correlationId?: string;
  readonly messageId?: string;
  readonly to?: string;
  readonly replyTo?: string;
  /** The message's `subject` (AMQP `subject`, Service Bus `Label`). */
  readonly subject?: string;
  readonly sessionId?: string;
  readonly replyToSessionId?: string;
  readonly contentType?: string;
  readonly applicationProperties?: Readonly<Record<string, string | number | boolean>>;
}

/** A subscription's filter: `true` (all messages), `false` (none) or a correlation filter. */
export type RuleFilterConfig = boolean | CorrelationFilter;

export interface SubscriptionConfig extends EntityOptions {
  /** Rules by name; a message is copied when any rule matches. Default `{ $Default: true }`. */
  readonly rules?: Readonly<Record<string, RuleFilterConfig>>;
}

export interface TopicConfig {
  readonly subscriptions?: Readonly<Record<string, SubscriptionConfig>>;
}

/** Settings for entities created on demand whose path starts with `prefix` (the longest prefix wins). */
export interface AutoCreateRule extends EntityOptions {
  readonly prefix: string;
  /** False: such entities are never created; naming one answers `amqp:not-found`, as Azure does. Default true. */
  readonly create?: boolean;
}

export interface PeerConfig {
  readonly queues?: Readonly<Record<string, EntityOptions>>;
  readonly topics?: Readonly<Record<string, TopicConfig>>;
  /**
   * Create unknown entities when a client first names them (a difference from Azure, which
   * answers `amqp:not-found`): a queue for a plain path, a topic and subscription for
   * `topic/Subscriptions/name`. Default true.
   */
  readonly autoCreate?: boolean;
  /** Settings of auto-created entities by path prefix (first match wins). */
  readonly autoCreateRules?: readonly AutoCreateRule[];
}

/**
 * The example topology (`examples/topology.ts`, as the generated `infra/azure/main.bicep`
 * deploys it; test/azure/example.test.ts checks that they agree): its topic with one
 * subscription per service whose rules pass the service's targets on `subject` (the Bicep's SQL
 * filter `sys.Label IN (...)` as the correlation filters this peer evaluates: one rule per
 * target), the Bicep's max delivery count, the session-enabled reply queue; plus path prefixes
 * for entities created on demand with short locks, few deliveries or sessions, and prefixes
 * that are never created (`missing-`, `cloudmom-reply-missing-`).
 *
 * @example
 * ```ts
 * const peer = await startServiceBusPeer({ config: EXAMPLE_CONFIG });
 * ```
 */
export const EXAMPLE_CONFIG: PeerConfig = {
  queues: {
    'cloudmom-examples-replies': { requiresSession: true },
  },
  topics: {
    'cloudmom-examples': {
      subscriptions: {
        // `$Default` replaced, as the Bicep does: only the service's targets pass.
        'cloudmom-examples-greeter': {
          maxDeliveryCount: 10,
          rules: { $Default: { subject: 'hello' }, sum: { subject: 'sum' } },
        },
        'cloudmom-examples-worker': {
          maxDeliveryCount: 10,
          rules: { $Default: { subject: 'audit' }, flaky: { subject: 'flaky' } },
        },
      },
    },
  },
  autoCreate: true,
  autoCreateRules: [
    { prefix: 'lock2s-', lockDurationMs: 2_000 },
    { prefix: 'max3-', maxDeliveryCount: 3 },
    { prefix: 'lock2s-max3-', lockDurationMs: 2_000, maxDeliveryCount: 3 },
    { prefix: 'session-', requiresSession: true },
    { prefix: 'session-lock2s-', requiresSession: true, lockDurationMs: 2_000 },
    // The conformance suite: a 5 s lock (its "settled at the platform" cases wait past it).
    { prefix: 'conf-', lockDurationMs: 5_000 },
    { prefix: 'session-conf-', requiresSession: true, lockDurationMs: 5_000 },
    // The chaos run: killed consumers' locks expire soon; the service never dead-letters first.
    { prefix: 'chaos-', lockDurationMs: 5_000, maxDeliveryCount: 50 },
    // Entities that do not exist, as on Azure (sends fail with MessagingEntityNotFound).
    { prefix: 'missing-', create: false },
    { prefix: 'cloudmom-reply-missing-', create: false },
  ],
};
