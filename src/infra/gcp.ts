/**
 * The Google Cloud generator: a topology → Terraform files (`versions.tf`, `variables.tf`,
 * `pubsub.tf`, `functions.tf`, `iam.tf`, `outputs.tf`): CMEK-encrypted topics, one filtered
 * subscription per service with its dead-letter policy, retry policy, ack deadline and
 * ordering, a dead-letter topic per service, the reply topic, one Cloud Function (2nd gen,
 * HTTP, behind the push subscription) and one service account per service, IAM on single
 * topics, subscriptions and services.
 *
 * @example
 * ```ts
 * import { defineTopology } from 'cloudmom';
 * import { generateGcp } from 'cloudmom/infra';
 *
 * const topology = defineTopology({ name: 'shop', services: { orders: { targets: ['order.created'] } } });
 * const files = generateGcp(topology, { stage: 'prod' }); // versions.tf, variables.tf, pubsub.tf, …
 * ```
 * @module
 */
import { InvalidArgumentError } from '../errors.ts';
import type { ServiceSpec, Topology, TopologyNames } from '../topology.ts';
import { checkOptionKeys } from '../util.ts';
import { DEFAULT_DELIVERY_MARGIN, platformDeliveries } from './delivery.ts';
import { integerOption } from './ranges.ts';
import type { GeneratedFile } from './types.ts';

/**
 * Options of {@link generateGcp}.
 *
 * @example
 * ```ts
 * const options: GcpOptions = { stage: 'prod', pull: ['batch'], maxInstances: 20 };
 * ```
 */
export interface GcpOptions {
  /** Stage of the resource names (`topology.names(stage)`). Default: none. */
  readonly stage?: string;
  /**
   * Delivery attempts Pub/Sub allows beyond a service's `maxDeliveries` before its dead-letter
   * policy forwards a message (without cloudmom's reason): `max_delivery_attempts` is
   * `maxDeliveries + deliveryMargin` within Pub/Sub's 5–100, never below `maxDeliveries`, so
   * cloudmom dead-letters first. 1–100, default 5.
   */
  readonly deliveryMargin?: number;
  /**
   * Services consumed by a long-running `PubSubBroker` (Cloud Run, GKE, a VM) from a pull
   * subscription instead of a function behind a push subscription. Default: none (every
   * service is a function).
   */
  readonly pull?: readonly string[];
  /** `max_instance_count` of each function. 1–1,000, default 10. */
  readonly maxInstances?: number;
  /** Memory of each function (`available_memory`), e.g. `'256M'`, `'1Gi'`. Default `'256M'`. */
  readonly memory?: string;
  /** Name each function's entry point is registered under: `(service) => name`. Default: the service name. */
  readonly entryPoint?: (service: string) => string;
}

const OPTION_KEYS = [
  'stage',
  'deliveryMargin',
  'pull',
  'maxInstances',
  'memory',
  'entryPoint',
] as const;

/** Pub/Sub limits the generator works within. */
const LIMITS = {
  ackDeadline: [10, 600],
  deliveryAttempts: [5, 100],
  backoffSeconds: 600,
  /** Subscription retention: 10 minutes to 7 days; topic retention up to 31 days. */
  subscriptionRetention: [600, 7 * 86_400],
  topicRetention: [600, 31 * 86_400],
  filterBytes: 256,
  accountId: 30,
  functionName: 63,
} as const;

/**
 * What the generated Terraform gives one service, derived from the topology in one place (the
 * generator, the example functions and the tests read it from here).
 *
 * @example
 * ```ts
 * gcpService(topology, 'greeter').filter; // 'attributes.target = "hello" OR attributes.target = "sum"'
 * ```
 */
export interface GcpService {
  /** The subscription (`topology.names(stage).services[name].queue`). */
  readonly subscription: string;
  /** Its dead-letter topic (`…services[name].deadLetter`), also the name of the pull subscription on it. */
  readonly deadLetterTopic: string;
  /** The subscription's filter: the service's targets on the attribute `target`. */
  readonly filter: string;
  /** `ack_deadline_seconds`: `lockSeconds`, else 2 × `timeoutSeconds`, within 10–600. */
  readonly ackDeadlineSeconds: number;
  /** The dead-letter policy's `max_delivery_attempts`. */
  readonly maxDeliveryAttempts: number;
  /** The retry policy's backoff, in seconds (from `retry`, within Pub/Sub's 0–600). */
  readonly minimumBackoffSeconds: number;
  readonly maximumBackoffSeconds: number;
  /** `enable_message_ordering` (ordered services: ordering keys = group keys). */
  readonly ordering: boolean;
  /** Push to a function (default) or pull by a long-running consumer. */
  readonly delivery: 'push' | 'pull';
  /** The function's entry point (push services). */
  readonly entryPoint: string;
  /** The runtime service account's account id, and the push invoker's (6–30 characters). */
  readonly runtimeAccount: string;
  readonly invokerAccount: string;
}

/**
 * The Pub/Sub settings of one service as {@link generateGcp} writes them.
 *
 * @example
 * ```ts
 * const { subscription, maxDeliveryAttempts } = gcpService(topology, 'worker', { stage: 'dev' });
 * ```
 */
export function gcpService(
  topology: Topology,
  service: string,
  options: Pick<GcpOptions, 'stage' | 'deliveryMargin' | 'pull' | 'entryPoint'> = {},
): GcpService {
  const s = topology.service(service);
  const names = topology.names(options.stage);
  const at = `generateGcp: services.${s.name}`;
  const margin = integerOption(
    options.deliveryMargin,
    DEFAULT_DELIVERY_MARGIN,
    1,
    100,
    'generateGcp: deliveryMargin',
  );
  const delivery = (options.pull ?? []).includes(s.name) ? 'pull' : 'push';
  const [minAck, maxAck] = LIMITS.ackDeadline;
  if (s.lockSeconds !== undefined && s.lockSeconds > maxAck)
    throw new InvalidArgumentError(
      `${at}.lockSeconds is ${s.lockSeconds}; a Pub/Sub ack deadline is at most ${maxAck} s (a pull consumer extends it while a handler runs): lower lockSeconds or leave it unset`,
    );
  if (delivery === 'push' && s.timeoutSeconds > maxAck)
    throw new InvalidArgumentError(
      `${at}.timeoutSeconds is ${s.timeoutSeconds}; a push request must be answered within the ack deadline (at most ${maxAck} s): lower timeoutSeconds or consume the service by pull (option pull: ['${s.name}'])`,
    );
  const filter = s.targets.map((t) => `attributes.target = "${t.name}"`).join(' OR ');
  const filterBytes = new TextEncoder().encode(filter).byteLength;
  if (filterBytes > LIMITS.filterBytes)
    throw new InvalidArgumentError(
      `${at}: the subscription filter on its ${s.targets.length} targets is ${filterBytes} bytes; Pub/Sub allows ${LIMITS.filterBytes}: split the service or shorten the target names`,
    );
  const minimumBackoffSeconds = Math.min(LIMITS.backoffSeconds, s.retry.baseDelayMs / 1000);
  const entryPoint = options.entryPoint ? options.entryPoint(s.name) : s.name;
  if (typeof entryPoint !== 'string' || !/^[A-Za-z_$][\w$-]*$/.test(entryPoint))
    throw new InvalidArgumentError(
      `generateGcp: entryPoint("${s.name}") must give a function name, got ${JSON.stringify(entryPoint)}`,
    );
  const subscription = names.services[s.name]!.queue;
  if (delivery === 'push' && subscription.length > LIMITS.functionName)
    throw new InvalidArgumentError(
      `${at}: the function name "${subscription}" is ${subscription.length} characters; Cloud Functions allows ${LIMITS.functionName}: shorten the topology name, the stage or the service name`,
    );
  return {
    subscription,
    deadLetterTopic: names.services[s.name]!.deadLetter,
    filter,
    ackDeadlineSeconds: clamp(s.lockSeconds ?? 2 * s.timeoutSeconds, minAck, maxAck),
    maxDeliveryAttempts: platformDeliveries(s, margin, ...LIMITS.deliveryAttempts),
    minimumBackoffSeconds,
    maximumBackoffSeconds: clamp(
      s.retry.maxDelayMs / 1000,
      minimumBackoffSeconds,
      LIMITS.backoffSeconds,
    ),
    ordering: s.ordered,
    delivery,
    entryPoint,
    runtimeAccount: accountId(`${names.prefix}-${s.name}-run`),
    invokerAccount: accountId(`${names.prefix}-${s.name}-push`),
  };
}

/**
 * Generates the Terraform of a topology for Google Cloud (provider `hashicorp/google` 6–7):
 *
 * - a KMS key ring and key; every topic encrypted with it (the Pub/Sub service agent may use it);
 * - the app's topic, the reply topic (when the topology has replies), and a dead-letter topic
 *   per service (`<prefix>-<service>-dead-letter`, kept `deadLetterRetentionSeconds`) with a pull
 *   subscription of the same name for reading them (`cloudmom dlq`);
 * - per service a subscription `<prefix>-<service>` filtered on `attributes.target` (its
 *   targets), with the ack deadline, a dead-letter policy to its own dead-letter topic, a retry
 *   policy from `retry`, message ordering when `ordered`, and a push config to its function
 *   (OIDC token of an invoker account that may invoke that function only) unless it is pulled;
 * - per push service a Cloud Function (2nd gen, HTTP, internal ingress) whose entry point is the
 *   service name, running as the service's own account: publisher on the app topic, its
 *   dead-letter topic and (when it replies) the reply topic; a pulled service's account also
 *   gets subscriber on its subscription;
 * - the requesters (`var.requesters`: instance id → principal): a provisioned reply subscription
 *   each, subscriber on it alone, publisher on the app topic — no project-wide Pub/Sub right.
 *
 * Throws `InvalidArgumentError` for what Pub/Sub cannot provision (a filter over 256 bytes, an
 * ack deadline over 600 s, a pushed handler running longer than that), naming the fix.
 *
 * @example
 * ```ts
 * for (const file of generateGcp(topology)) writeFileSync(`infra/gcp/${file.path}`, file.content);
 * ```
 */
export function generateGcp(topology: Topology, options: GcpOptions = {}): GeneratedFile[] {
  checkOptionKeys(options, OPTION_KEYS, 'generateGcp');
  const names = topology.names(options.stage);
  if (options.pull !== undefined) {
    if (!Array.isArray(options.pull))
      throw new InvalidArgumentError('generateGcp: pull must be an array of service names');
    for (const p of options.pull) topology.service(p);
  }
  if (options.entryPoint !== undefined && typeof options.entryPoint !== 'function')
    throw new InvalidArgumentError('generateGcp: entryPoint must be a function (service) => name');
  const maxInstances = integerOption(
    options.maxInstances,
    10,
    1,
    1000,
    'generateGcp: maxInstances',
  );
  const memory = options.memory ?? '256M';
  if (typeof memory !== 'string' || !/^\d+(?:M|Mi|G|Gi)$/.test(memory))
    throw new InvalidArgumentError(
      `generateGcp: memory ${JSON.stringify(memory)} must be like '256M' or '1Gi'`,
    );
  const services = topology.services.map((spec) => ({
    spec,
    id: spec.name.replace(/-/g, '_'),
    gcp: gcpService(topology, spec.name, options),
  }));
  const accounts = new Set<string>();
  for (const s of services)
    for (const a of [s.gcp.runtimeAccount, s.gcp.invokerAccount]) {
      if (accounts.has(a))
        throw new InvalidArgumentError(
          `generateGcp: two services would share the account id "${a}"; rename one`,
        );
      accounts.add(a);
    }
  const ctx: Context = { topology, names, services, maxInstances, memory, stage: options.stage };
  const file = (path: string, content: string) => ({
    path,
    content: `${content.replace(/\n{3,}/g, '\n\n').trimEnd()}\n`,
  });
  return [
    file('versions.tf', versions(ctx)),
    file('variables.tf', variables(ctx)),
    file('pubsub.tf', pubsub(ctx)),
    file('functions.tf', functions(ctx)),
    file('iam.tf', iam(ctx)),
    file('outputs.tf', outputs(ctx)),
  ];
}

interface Service {
  readonly spec: ServiceSpec;
  /** Terraform label part: the service name with `-` → `_` (injective: names have no `_`). */
  readonly id: string;
  readonly gcp: GcpService;
}

interface Context {
  readonly topology: Topology;
  readonly names: TopologyNames;
  readonly services: readonly Service[];
  readonly maxInstances: number;
  readonly memory: string;
  readonly stage: string | undefined;
}

const HEADER = (topology: Topology) =>
  `# Generated by cloudmom/infra (generateGcp) from the topology "${topology.name}".\n# Do not edit: change the topology and regenerate (npm run infra; npx cloudmom infra gcp).\n`;

function versions({ topology, names, services }: Context): string {
  return `${HEADER(topology)}#${topology.description ? ` ${topology.description}\n#` : ''}
# Pub/Sub: topic ${names.topic}; per service a subscription filtered on attributes.target:
${services.map((s) => `#   ${s.gcp.subscription} (${s.spec.targets.map((t) => t.name).join(', ')}) → ${s.gcp.delivery === 'push' ? `function ${s.gcp.subscription}` : 'pull'}, dead letters → ${s.gcp.deadLetterTopic}`).join('\n')}
${names.replies ? `# Replies: topic ${names.replies}, one provisioned subscription per requester (var.requesters).\n` : ''}# See docs/gcp.md for how to deploy and what is validated offline.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
`;
}

function variables({ topology, names, services }: Context): string {
  const push = services.some((s) => s.gcp.delivery === 'push');
  return `${HEADER(topology)}
variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions and the KMS key ring."
  type        = string
  default     = "europe-west1"
}
${
  push
    ? `
variable "source_bucket" {
  description = "Bucket holding the functions' source archive (built and uploaded as docs/gcp.md shows)."
  type        = string
}

variable "source_object" {
  description = "Object name of the source archive in source_bucket, e.g. ${names.prefix}-<sha>.zip."
  type        = string
}
`
    : ''
}${
  names.replies
    ? `
variable "requesters" {
  description = "Callers of request(), by instance id (PubSubBroker option instanceId: letters, digits, - and _, at most 64) to principal (e.g. serviceAccount:api@p.iam.gserviceaccount.com). Each gets a reply subscription ${names.replies}-<id> filtered on its id, subscriber rights on it alone, and publisher rights on the app topic."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for id in keys(var.requesters) : can(regex("^[A-Za-z0-9_-]{1,64}$", id))])
    error_message = "Instance ids are 1 to 64 letters, digits, - or _."
  }
}
`
    : ''
}`;
}

function pubsub({ topology, names, services }: Context): string {
  const retention = (seconds: number, [min, max]: readonly [number, number]) =>
    `"${clamp(seconds, min, max)}s"`;
  const topic = (label: string, name: string, seconds: number, comment: string) => `
# ${comment}
resource "google_pubsub_topic" "${label}" {
  name                       = ${hcl(name)}
  kms_key_name               = google_kms_crypto_key.pubsub.id
  message_retention_duration = ${retention(seconds, LIMITS.topicRetention)}
  depends_on                 = [google_kms_crypto_key_iam_member.pubsub_agent]
}
`;
  let out = `${HEADER(topology)}
data "google_project" "this" {}

locals {
  # The Pub/Sub service agent: forwards dead letters and mints push OIDC tokens.
  pubsub_agent = "serviceAccount:service-\${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# ---- encryption: every topic under a customer-managed key ----

resource "google_kms_key_ring" "cloudmom" {
  name     = ${hcl(names.prefix)}
  location = var.region
}

resource "google_kms_crypto_key" "pubsub" {
  name            = ${hcl(`${names.prefix}-pubsub`)}
  key_ring        = google_kms_key_ring.cloudmom.id
  rotation_period = "7776000s" # 90 days
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "pubsub_agent" {
  crypto_key_id = google_kms_crypto_key.pubsub.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.pubsub_agent
}

# ---- topics ----
${topic('app', names.topic, topology.retentionSeconds, 'publish() sends here; every target travels in the attribute `target`.')}`;
  if (topology.replies && names.replies)
    out += topic(
      'replies',
      names.replies,
      topology.replies.retentionSeconds,
      'Replies to request(): each requester reads its own provisioned subscription (below).',
    );
  for (const s of services)
    out += topic(
      `dead_letter_${s.id}`,
      s.gcp.deadLetterTopic,
      s.spec.deadLetterRetentionSeconds,
      `Dead letters of ${s.spec.name}: from cloudmom (attributes dead_letter_reason, dead_letter_description) and from its subscription's dead-letter policy.`,
    );
  out += '\n# ---- subscriptions ----\n';
  for (const s of services) {
    const g = s.gcp;
    out += `
# ${s.spec.name}${s.spec.description ? `: ${s.spec.description}` : ''}
# maxDeliveries ${s.spec.maxDeliveries} (cloudmom dead-letters with the reason), max_delivery_attempts ${g.maxDeliveryAttempts} (Pub/Sub).
resource "google_pubsub_subscription" "service_${s.id}" {
  name                       = ${hcl(g.subscription)}
  topic                      = google_pubsub_topic.app.id
  filter                     = ${hcl(g.filter)}
  ack_deadline_seconds       = ${g.ackDeadlineSeconds}
  message_retention_duration = ${retention(topology.retentionSeconds, LIMITS.subscriptionRetention)}
  enable_message_ordering    = ${g.ordering}
${
  g.delivery === 'push'
    ? `
  push_config {
    push_endpoint = google_cloudfunctions2_function.${s.id}.service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.invoker_${s.id}.email
    }
  }
`
    : ''
}
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter_${s.id}.id
    max_delivery_attempts = ${g.maxDeliveryAttempts}
  }

  retry_policy {
    minimum_backoff = "${g.minimumBackoffSeconds}s"
    maximum_backoff = "${g.maximumBackoffSeconds}s"
  }

  expiration_policy {
    ttl = "" # never expires
  }
}

# Where ${s.spec.name}'s dead letters are read (pull; older ones by seek on the topic's retention).
resource "google_pubsub_subscription" "dead_letter_${s.id}" {
  name                       = ${hcl(g.deadLetterTopic)}
  topic                      = google_pubsub_topic.dead_letter_${s.id}.id
  ack_deadline_seconds       = 60
  message_retention_duration = ${retention(s.spec.deadLetterRetentionSeconds, LIMITS.subscriptionRetention)}
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}
`;
  }
  if (topology.replies && names.replies)
    out += `
# One reply subscription per requester (var.requesters: instance id → principal), filtered on
# the reply key the broker writes (\`PubSubBroker({ instanceId, replySubscription })\`), so
# replies on the shared reply topic reach only their requester. Provisioned here instead of
# created by the broker: see iam.tf.
resource "google_pubsub_subscription" "replies" {
  for_each                   = var.requesters
  name                       = "${hclEscape(names.replies)}-\${each.key}"
  topic                      = google_pubsub_topic.replies.id
  filter                     = "attributes.reply_key = \\"\${each.key}\\""
  ack_deadline_seconds       = 10
  message_retention_duration = ${retention(topology.replies.retentionSeconds, LIMITS.subscriptionRetention)}
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expires: it outlives restarts of its requester
  }
}
`;
  out += `
# The Pub/Sub service agent forwards dead letters: publisher on each dead-letter topic,
# subscriber on the subscription it dead-letters from.
`;
  for (const s of services)
    out += `
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters_${s.id}" {
  topic  = google_pubsub_topic.dead_letter_${s.id}.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_reads_${s.id}" {
  subscription = google_pubsub_subscription.service_${s.id}.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
`;
  return out;
}

function functions({ topology, names, services, maxInstances, memory, stage }: Context): string {
  let out = `${HEADER(topology)}
# One Cloud Function (2nd gen, HTTP) per pushed service, all from one archive
# (examples/gcp/package.ts): the entry point is the service's; its push subscription
# (pubsub.tf) is filtered on the service's targets, so it never sees another service's messages.
`;
  for (const s of services) {
    if (s.gcp.delivery !== 'push') continue;
    const env: [string, string][] = [
      ['GOOGLE_CLOUD_PROJECT', 'var.project_id'],
      ['CLOUDMOM_SERVICE', hcl(s.spec.name)],
      ...(stage === undefined ? [] : ([['CLOUDMOM_STAGE', hcl(stage)]] as [string, string][])),
      ['CLOUDMOM_TOPIC', 'google_pubsub_topic.app.name'],
      ['CLOUDMOM_DEAD_LETTER_TOPIC', `google_pubsub_topic.dead_letter_${s.id}.name`],
      ...(names.replies
        ? ([['CLOUDMOM_REPLY_TOPIC', 'google_pubsub_topic.replies.name']] as [string, string][])
        : []),
      ['CLOUDMOM_LOG_LEVEL', '"info"'],
    ];
    const width = Math.max(...env.map(([k]) => k.length));
    out += `
# ${s.spec.name}: ${s.spec.targets.map((t) => t.name).join(', ')}; one message per request, ${s.spec.timeoutSeconds} s per handler.
resource "google_cloudfunctions2_function" "${s.id}" {
  name     = ${hcl(s.gcp.subscription)}
  location = var.region

  build_config {
    runtime     = "nodejs22"
    entry_point = ${hcl(s.gcp.entryPoint)}
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.runtime_${s.id}.email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    available_memory               = ${hcl(memory)}
    timeout_seconds                = ${s.spec.timeoutSeconds}
    max_instance_count             = ${maxInstances}
    environment_variables = {
${env.map(([k, v]) => `      ${k.padEnd(width)} = ${v}`).join('\n')}
    }
  }
}
`;
  }
  return out;
}

function iam({ topology, names, services }: Context): string {
  let out = `${HEADER(topology)}
# Least privilege: one runtime identity per service, rights granted on single topics,
# subscriptions and functions, no project-wide Pub/Sub role, no custom role.
`;
  for (const s of services) {
    const publishes = [
      ['app', 'google_pubsub_topic.app.id'],
      ['dead_letter', `google_pubsub_topic.dead_letter_${s.id}.id`],
      ...(s.spec.replies && names.replies ? [['replies', 'google_pubsub_topic.replies.id']] : []),
    ];
    out += `
# ${s.spec.name}'s runtime identity: publishes to the app topic (handlers' publish(), add()'s
# reply targets), to its own dead-letter topic${s.spec.replies && names.replies ? ' and to the reply topic' : ''}.${s.gcp.delivery === 'push' ? ' It reads nothing: messages are pushed to it.' : ' It pulls its own subscription.'}
resource "google_service_account" "runtime_${s.id}" {
  account_id   = ${hcl(s.gcp.runtimeAccount)}
  display_name = ${hcl(`cloudmom ${s.spec.name} runtime`)}
}

resource "google_pubsub_topic_iam_member" "${s.id}_publishes" {
  for_each = {
${publishes.map(([k, v]) => `    ${k!.padEnd(11)} = ${v}`).join('\n')}
  }
  topic  = each.value
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:\${google_service_account.runtime_${s.id}.email}"
}
`;
    if (s.gcp.delivery === 'pull') {
      out += `
resource "google_pubsub_subscription_iam_member" "${s.id}_pulls" {
  subscription = google_pubsub_subscription.service_${s.id}.id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:\${google_service_account.runtime_${s.id}.email}"
}
`;
      continue;
    }
    out += `
# Identity in ${s.spec.name}'s push OIDC token: invokes ${s.spec.name}'s function only.
resource "google_service_account" "invoker_${s.id}" {
  account_id   = ${hcl(s.gcp.invokerAccount)}
  display_name = ${hcl(`cloudmom ${s.spec.name} push invoker`)}
}

resource "google_cloud_run_v2_service_iam_member" "${s.id}_invoker" {
  name     = google_cloudfunctions2_function.${s.id}.service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:\${google_service_account.invoker_${s.id}.email}"
}

# The Pub/Sub service agent mints the OIDC tokens for that identity (and only that one).
resource "google_service_account_iam_member" "agent_mints_${s.id}_tokens" {
  service_account_id = google_service_account.invoker_${s.id}.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
`;
  }
  if (names.replies)
    out += `
# Requesters (callers of request()), least privilege: each one publishes to the app topic and
# reads its own reply subscription (pubsub.tf, google_pubsub_subscription.replies), provisioned
# here, so it needs no right to create, consume or delete any other subscription: Pub/Sub has
# no IAM condition on resource names and no parent narrower than the project for
# subscriptions, so a requester creating its own would need those rights project-wide. The
# broker uses the provisioned one (PubSubBroker options instanceId + replySubscription) and
# never creates or deletes it.
resource "google_pubsub_subscription_iam_member" "requesters_read_replies" {
  for_each     = var.requesters
  subscription = google_pubsub_subscription.replies[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = each.value
}

resource "google_pubsub_topic_iam_member" "requesters_publish" {
  for_each = var.requesters
  topic    = google_pubsub_topic.app.id
  role     = "roles/pubsub.publisher"
  member   = each.value
}
`;
  return out;
}

function outputs({ topology, names, services }: Context): string {
  const map = (description: string, pick: (s: Service) => string | undefined) => {
    const rows = services
      .map((s) => [s, pick(s)] as const)
      .filter((r): r is readonly [Service, string] => r[1] !== undefined);
    return `  description = ${hcl(description)}
  value = {
${rows.map(([s, v]) => `    ${hcl(s.spec.name)} = ${v}`).join('\n')}
  }`;
  };
  return `${HEADER(topology)}
output "topic" {
  description = "Topic publish() sends to (PubSubBroker option topic)."
  value       = google_pubsub_topic.app.id
}
${
  names.replies
    ? `
output "reply_topic" {
  description = "Reply topic (PubSubBroker option replyTopic)."
  value       = google_pubsub_topic.replies.id
}

output "reply_subscriptions" {
  description = "Each requester's reply subscription, by instance id (PubSubBroker options instanceId + replySubscription)."
  value       = { for id, s in google_pubsub_subscription.replies : id => s.name }
}
`
    : ''
}
output "subscriptions" {
${map("Each service's subscription (PubSubBroker option subscription for a pulled service).", (s) => `google_pubsub_subscription.service_${s.id}.name`)}
}

output "dead_letter_topics" {
${map("Each service's dead-letter topic (PubSubBroker option deadLetterTopic).", (s) => `google_pubsub_topic.dead_letter_${s.id}.id`)}
}
${
  services.some((s) => s.gcp.delivery === 'push')
    ? `
output "function_uris" {
${map("Each pushed service's function URI.", (s) => (s.gcp.delivery === 'push' ? `google_cloudfunctions2_function.${s.id}.service_config[0].uri` : undefined))}
}
`
    : ''
}`;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** The inside of an HCL quoted string. */
function hclEscape(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\$\{/g, '$${')
    .replace(/%\{/g, '%%{')
    .replace(/\n/g, '\\n');
}

/** An HCL quoted string. */
function hcl(value: string): string {
  return `"${hclEscape(value)}"`;
}

/**
 * A service account id (6–30 of `[a-z0-9-]`, starting with a letter): `base` when it fits, else
 * its first characters and a hash of the whole, so long names stay distinct.
 */
function accountId(base: string): string {
  if (base.length <= LIMITS.accountId) return base;
  let h = 0x811c9dc5; // FNV-1a, 32 bits
  for (let i = 0; i < base.length; i++) h = Math.imul(h ^ base.charCodeAt(i), 0x01000193) >>> 0;
  const hash = h.toString(36).padStart(7, '0');
  return `${base.slice(0, LIMITS.accountId - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}
