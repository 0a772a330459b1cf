/**
 * The Azure generator: a topology → one `main.bicep` (Service Bus namespace, topic, one
 * subscription per service, the reply queue, one Function App per service with its own
 * managed identity, data-plane role assignments scoped to single entities).
 *
 * @example
 * ```ts
 * import { defineTopology } from 'cloudmom';
 * import { generateAzure } from 'cloudmom/infra';
 *
 * const topology = defineTopology({ name: 'shop', services: { orders: { targets: ['order.created'] } } });
 * const [bicep] = generateAzure(topology, { stage: 'prod' }); // { path: 'main.bicep', content }
 * ```
 * @module
 */
import { InvalidArgumentError } from '../errors.ts';
import type { ServiceSpec, Topology, TopologyNames } from '../topology.ts';
import { checkOptionKeys } from '../util.ts';
import { DEFAULT_DELIVERY_MARGIN, platformDeliveries, stringOption } from './delivery.ts';
import { integerOption } from './ranges.ts';
import type { GeneratedFile } from './types.ts';

/**
 * Options of {@link generateAzure}.
 *
 * @example
 * ```ts
 * const options: AzureOptions = { stage: 'prod', deliveryMargin: 5, connection: 'ServiceBusConnection' };
 * ```
 */
export interface AzureOptions {
  /** Stage of the resource names (`topology.names(stage)`). Default: none. */
  readonly stage?: string;
  /**
   * Deliveries Service Bus allows beyond a service's `maxDeliveries` before it dead-letters a
   * message itself (`MaxDeliveryCountExceeded`, no handler error as reason): the subscription's
   * `maxDeliveryCount` is `maxDeliveries + deliveryMargin`, so cloudmom dead-letters first and the
   * service's limit only catches deliveries no handler answered (an instance killed mid-message).
   * 1–100, default 5.
   */
  readonly deliveryMargin?: number;
  /**
   * Prefix of the Azure resource names that are not messaging entities (namespace, plan,
   * Function Apps, storage account; each gets a suffix unique to the resource group): 3–20
   * lower-case letters, digits and hyphens. Default: the topology's prefix, cut to 20.
   * It is the Bicep parameter `namePrefix`'s default; a deployment may override it.
   */
  readonly namePrefix?: string;
  /**
   * App-setting prefix of the Functions trigger connection
   * (`<connection>__fullyQualifiedNamespace`, an identity-based connection). Default
   * `'ServiceBusConnection'`.
   */
  readonly connection?: string;
}

const OPTION_KEYS = ['stage', 'deliveryMargin', 'namePrefix', 'connection'] as const;

/** Service Bus limits the generator checks. */
const LIMITS = {
  /** Longest subscription name. */
  subscriptionName: 50,
  /** Longest peek-lock duration (the SDK and the Functions host renew past it). */
  lockSeconds: 300,
  /** Longest execution of a Consumption-plan function. */
  functionSeconds: 600,
} as const;

/** Built-in role definition ids (the same in every tenant). */
export const AZURE_ROLES = {
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
} as const;

/**
 * What the generated Bicep gives one service, derived from the topology in one place (the
 * generator, the example Functions app and the tests read it from here).
 *
 * @example
 * ```ts
 * azureService(topology, 'greeter').subscription; // "cloudmom-examples-greeter"
 * ```
 */
export interface AzureService {
  /** The topic subscription (`topology.names(stage).services[name].queue`). */
  readonly subscription: string;
  /** Its rule `$Default`: a SQL filter on the subject (where cloudmom puts the target). */
  readonly filter: string;
  /** Peek-lock duration in seconds: `lockSeconds`, else 2 × `timeoutSeconds` within 30–300. */
  readonly lockSeconds: number;
  /** Service Bus's own delivery limit: `maxDeliveries + deliveryMargin`. */
  readonly maxDeliveryCount: number;
  /** Session-enabled (ordered services): messages of one session id are handled in order. */
  readonly sessions: boolean;
  /** The Function App's `functionTimeout` in seconds: a whole batch at the service's concurrency. */
  readonly functionTimeoutSeconds: number;
}

/**
 * The Service Bus settings of one service as {@link generateAzure} writes them.
 *
 * @example
 * ```ts
 * const { subscription, sessions } = azureService(topology, 'greeter', { stage: 'dev' });
 * ```
 */
export function azureService(
  topology: Topology,
  service: string,
  options: Pick<AzureOptions, 'stage' | 'deliveryMargin'> = {},
): AzureService {
  const s = topology.service(service);
  const names = topology.names(options.stage);
  const margin = integerOption(
    options.deliveryMargin,
    DEFAULT_DELIVERY_MARGIN,
    1,
    100,
    'generateAzure: deliveryMargin',
  );
  const subscription = names.services[s.name]!.queue;
  if (subscription.length > LIMITS.subscriptionName)
    throw new InvalidArgumentError(
      `generateAzure: the subscription name "${subscription}" is ${subscription.length} characters; Service Bus allows ${LIMITS.subscriptionName}: shorten the topology name, the stage or the service name`,
    );
  if (s.lockSeconds !== undefined && s.lockSeconds > LIMITS.lockSeconds)
    throw new InvalidArgumentError(
      `generateAzure: services.${s.name}.lockSeconds is ${s.lockSeconds}; a Service Bus lock lasts at most ${LIMITS.lockSeconds} s (the SDK and the Functions host renew it while a handler runs): lower lockSeconds or leave it unset`,
    );
  const waves = Math.ceil(s.batchSize / Math.min(s.concurrency, s.batchSize));
  if (s.timeoutSeconds > LIMITS.functionSeconds)
    throw new InvalidArgumentError(
      `generateAzure: services.${s.name}.timeoutSeconds is ${s.timeoutSeconds}; a Consumption-plan function runs at most ${LIMITS.functionSeconds} s: lower timeoutSeconds`,
    );
  return {
    subscription,
    filter: `sys.Label IN (${s.targets.map((t) => `'${t.name}'`).join(', ')})`,
    lockSeconds: s.lockSeconds ?? Math.min(LIMITS.lockSeconds, Math.max(30, 2 * s.timeoutSeconds)),
    maxDeliveryCount: platformDeliveries(s, margin, 1, 2000),
    sessions: s.ordered,
    functionTimeoutSeconds: Math.min(LIMITS.functionSeconds, s.timeoutSeconds * waves),
  };
}

/**
 * Generates `main.bicep` for a topology: a Standard Service Bus namespace (Entra ID only: local
 * SAS authentication disabled, TLS 1.2), the app's topic, one subscription per service filtered
 * on the subject (the target) with its lock, delivery limit, sessions when ordered and
 * dead-lettering into its own `$deadletterqueue`, the session-enabled reply queue, and one Linux
 * Consumption Function App per service whose system-assigned identity may receive from its own
 * subscription, send to the topic and (when the service replies) to the reply queue — nothing
 * else. `clientPrincipalIds` (a Bicep parameter) grants callers of `publish()`/`request()` send
 * on the topic and receive on the reply queue.
 *
 * Throws `InvalidArgumentError` for what Service Bus or the Consumption plan cannot provision (a
 * subscription name over 50 characters, a lock over 5 minutes, a handler timeout over 10
 * minutes), naming the fix.
 *
 * @example
 * ```ts
 * for (const file of generateAzure(topology)) writeFileSync(`infra/azure/${file.path}`, file.content);
 * ```
 */
export function generateAzure(topology: Topology, options: AzureOptions = {}): GeneratedFile[] {
  checkOptionKeys(options, OPTION_KEYS, 'generateAzure');
  const names = topology.names(options.stage);
  const connection = stringOption(
    options.connection,
    'ServiceBusConnection',
    /^[A-Za-z][A-Za-z0-9_]{0,63}$/,
    'generateAzure: connection',
    'an app-setting name (letters, digits and _, starting with a letter)',
  );
  const namePrefix = stringOption(
    options.namePrefix,
    names.prefix.slice(0, 20).replace(/-+$/, ''),
    /^[a-z][a-z0-9-]{1,18}[a-z0-9]$/,
    'generateAzure: namePrefix',
    '3–20 lower-case letters, digits and hyphens, starting with a letter',
  );
  const services = topology.services.map((s) => ({
    spec: s,
    id: identifier(s.name),
    az: azureService(topology, s.name, options),
  }));
  const w = new Writer();
  header(w, topology, names, services);
  params(w, namePrefix);
  vars(w, names);
  messaging(w, topology, services);
  functions(w, services, connection, options.stage);
  roles(w, topology, services);
  outputs(w, names, services);
  return [{ path: 'main.bicep', content: w.text() }];
}

interface Service {
  readonly spec: ServiceSpec;
  /** Bicep identifier part: the service name with `-` → `_` (injective: names have no `_`). */
  readonly id: string;
  readonly az: AzureService;
}

class Writer {
  readonly #lines: string[] = [];
  line(text = ''): void {
    this.#lines.push(text);
  }
  text(): string {
    return `${this.#lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
  }
}

function header(w: Writer, topology: Topology, names: TopologyNames, services: Service[]): void {
  w.line(`// Generated by cloudmom/infra (generateAzure) from the topology "${topology.name}".`);
  w.line(
    '// Do not edit: change the topology and regenerate (npm run infra; npx cloudmom infra azure).',
  );
  if (topology.description) w.line(`// ${topology.description}`);
  w.line('//');
  w.line(
    `//   publishers ──► topic \`${names.topic}\`, one subscription per service, filtered on the subject (= target):`,
  );
  for (const s of services)
    w.line(
      `//                    ${s.az.subscription} (${s.spec.targets.map((t) => t.name).join(', ')})${s.spec.ordered ? ', sessions' : ''} ──► Function App ${s.spec.name}`,
    );
  if (names.replies)
    w.line(
      `//   replies    ──► queue \`${names.replies}\`, session-enabled: each request() caller reads its own session`,
    );
  w.line('//');
  w.line("// Dead letters stay in each subscription's own dead-letter sub-queue");
  w.line("// (`<topic>/Subscriptions/<subscription>/$deadletterqueue`) with cloudmom's reason: it");
  w.line(
    "// dead-letters at maxDeliveries; the subscription's maxDeliveryCount is higher, for deliveries",
  );
  w.line('// no handler answered. Service Bus keeps dead letters until they are read (no expiry).');
  w.line('//');
  w.line(
    '// Each Function App has its own system-assigned identity: "Azure Service Bus Data Receiver"',
  );
  w.line(
    '// on its subscription, "Data Sender" on the topic and, when it replies, on the reply queue.',
  );
  w.line(
    '// The namespace has local (SAS) authentication disabled: no key or connection string exists.',
  );
  w.line('//');
  w.line('// Deploy: az deployment group create -g <resource-group> -f main.bicep');
  w.line();
}

function params(w: Writer, namePrefix: string): void {
  w.line(
    "@description('Prefix of the Azure resource names (namespace, plan, Function Apps, storage); the messaging entities are named by the topology.')",
  );
  w.line('@minLength(3)');
  w.line('@maxLength(20)');
  w.line(`param namePrefix string = ${str(namePrefix)}`);
  w.line();
  w.line("@description('Region of every resource.')");
  w.line('param location string = resourceGroup().location');
  w.line();
  w.line(
    "@description('Principal (object) ids of callers outside the Function Apps: each may send to the topic (publish, request) and receive from the reply queue (its own session).')",
  );
  w.line('param clientPrincipalIds array = []');
  w.line();
}

function vars(w: Writer, names: TopologyNames): void {
  w.line('var suffix = uniqueString(resourceGroup().id, namePrefix)');
  w.line(`var namespaceName = '\${namePrefix}-sb-\${suffix}'`);
  w.line(`var storageName = toLower(take('\${replace(namePrefix, '-', '')}\${suffix}', 24))`);
  w.line(`var topicName = ${str(names.topic)}`);
  if (names.replies) w.line(`var replyQueueName = ${str(names.replies)}`);
  w.line();
  w.line('// Built-in role definition ids.');
  for (const [name, id] of Object.entries(AZURE_ROLES))
    w.line(
      `var ${name} = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '${id}')`,
    );
  w.line();
}

const SB = '2022-10-01-preview';

function messaging(w: Writer, topology: Topology, services: Service[]): void {
  w.line('// ---- Service Bus ----');
  w.line();
  w.line(`resource namespace 'Microsoft.ServiceBus/namespaces@${SB}' = {`);
  w.line('  name: namespaceName');
  w.line('  location: location');
  w.line('  sku: {');
  w.line(
    "    name: 'Standard' // topics and sessions need Standard or Premium; Standard takes 256 KB messages",
  );
  w.line("    tier: 'Standard'");
  w.line('  }');
  w.line('  identity: {');
  w.line("    type: 'SystemAssigned'");
  w.line('  }');
  w.line('  properties: {');
  w.line('    disableLocalAuth: true // Entra ID only: no SAS keys, no connection strings');
  w.line("    minimumTlsVersion: '1.2'");
  w.line(
    "    publicNetworkAccess: 'Enabled' // the Consumption plan has no VNet integration; access is gated by Entra ID roles",
  );
  w.line('  }');
  w.line('}');
  w.line();
  w.line(`// publish() sends here; the subject carries the target.`);
  w.line(`resource topic 'Microsoft.ServiceBus/namespaces/topics@${SB}' = {`);
  w.line('  parent: namespace');
  w.line('  name: topicName');
  w.line('  properties: {');
  w.line('    maxSizeInMegabytes: 1024');
  w.line(`    defaultMessageTimeToLive: '${duration(topology.retentionSeconds)}'`);
  w.line('  }');
  w.line('}');
  for (const s of services) {
    w.line();
    w.line(
      `// ${s.spec.name}${s.spec.description ? `: ${s.spec.description}` : ''} maxDeliveries ${s.spec.maxDeliveries} (cloudmom), maxDeliveryCount ${s.az.maxDeliveryCount} (Service Bus).`,
    );
    w.line(
      `resource subscription_${s.id} 'Microsoft.ServiceBus/namespaces/topics/subscriptions@${SB}' = {`,
    );
    w.line('  parent: topic');
    w.line(`  name: ${str(s.az.subscription)}`);
    w.line('  properties: {');
    w.line(`    lockDuration: '${duration(s.az.lockSeconds)}'`);
    w.line(`    maxDeliveryCount: ${s.az.maxDeliveryCount}`);
    w.line(`    requiresSession: ${s.az.sessions}`);
    w.line(`    defaultMessageTimeToLive: '${duration(topology.retentionSeconds)}'`);
    w.line('    deadLetteringOnMessageExpiration: true');
    w.line('    deadLetteringOnFilterEvaluationExceptions: true');
    w.line('  }');
    w.line('}');
    w.line();
    w.line(
      '// Naming the rule `$Default` replaces the catch-all TrueFilter a new subscription gets.',
    );
    w.line(
      `resource rule_${s.id} 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@${SB}' = {`,
    );
    w.line(`  parent: subscription_${s.id}`);
    w.line("  name: '$Default'");
    w.line('  properties: {');
    w.line("    filterType: 'SqlFilter'");
    w.line('    sqlFilter: {');
    w.line(`      sqlExpression: ${str(s.az.filter)}`);
    w.line('    }');
    w.line('  }');
    w.line('}');
  }
  if (topology.replies) {
    w.line();
    w.line(
      '// Shared by every requester: each reads its own session (ServiceBusBroker replySessions);',
    );
    w.line(
      "// replies carry the request's replyToSessionId as their session id. Uncollected replies",
    );
    w.line('// expire into the dead-letter sub-queue.');
    w.line(`resource replyQueue 'Microsoft.ServiceBus/namespaces/queues@${SB}' = {`);
    w.line('  parent: namespace');
    w.line('  name: replyQueueName');
    w.line('  properties: {');
    w.line('    requiresSession: true');
    w.line("    lockDuration: 'PT1M'");
    w.line(`    maxDeliveryCount: 10`);
    w.line(`    defaultMessageTimeToLive: '${duration(topology.replies.retentionSeconds)}'`);
    w.line('    deadLetteringOnMessageExpiration: true');
    w.line('  }');
    w.line('}');
  }
  w.line();
}

function functions(
  w: Writer,
  services: Service[],
  connection: string,
  stage: string | undefined,
): void {
  w.line('// ---- Function Apps (Linux Consumption, Node 22): one per service ----');
  w.line();
  w.line("resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {");
  w.line(
    '  // checkov:skip=CKV_AZURE_43: the name is computed (toLower/take/uniqueString, ≤ 24 lowercase letters and digits); checkov cannot evaluate it',
  );
  w.line('  name: storageName');
  w.line('  location: location');
  w.line('  sku: {');
  w.line("    name: 'Standard_GRS'");
  w.line('  }');
  w.line("  kind: 'StorageV2'");
  w.line('  properties: {');
  w.line("    minimumTlsVersion: 'TLS1_2'");
  w.line('    supportsHttpsTrafficOnly: true');
  w.line('    allowBlobPublicAccess: false');
  w.line(
    '    allowSharedKeyAccess: false // the Functions hosts use their managed identities (AzureWebJobsStorage__accountName)',
  );
  w.line(
    "    publicNetworkAccess: 'Enabled' // checkov:skip=CKV_AZURE_59: the Consumption plan host reaches its storage over the public endpoint",
  );
  w.line('    networkAcls: {');
  w.line(
    "      defaultAction: 'Allow' // checkov:skip=CKV_AZURE_35: as above; no VNet on the Consumption plan",
  );
  w.line("      bypass: 'AzureServices'");
  w.line('    }');
  w.line('  }');
  w.line('}');
  w.line();
  w.line("resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {");
  w.line(`  name: '\${namePrefix}-plan-\${suffix}'`);
  w.line('  location: location');
  w.line("  kind: 'functionapp'");
  w.line(
    '  // checkov:skip=CKV_AZURE_225: the Consumption (Y1) plan has no zone redundancy; use Flex Consumption or Premium for it',
  );
  w.line('  sku: {');
  w.line("    name: 'Y1'");
  w.line("    tier: 'Dynamic'");
  w.line('  }');
  w.line('  properties: {');
  w.line('    reserved: true // Linux');
  w.line('  }');
  w.line('}');
  for (const s of services) {
    const hostId = `${s.spec.name.slice(0, 18).replace(/-+$/, '')}-`;
    const settings: [string, string][] = [
      ['FUNCTIONS_EXTENSION_VERSION', "'~4'"],
      ['FUNCTIONS_WORKER_RUNTIME', "'node'"],
      ['AzureWebJobsStorage__accountName', 'storage.name'],
      // The apps share the storage account: each needs its own host id (a default one is the
      // app name cut to 32 characters, which two apps of one prefix could share).
      [
        'AzureFunctionsWebHost__hostid',
        `'${hostId}\${uniqueString(resourceGroup().id, namePrefix, ${str(s.spec.name)})}'`,
      ],
      [`${connection}__fullyQualifiedNamespace`, `'\${namespace.name}.servicebus.windows.net'`],
      ['CLOUDMOM_SERVICE', str(s.spec.name)],
      ...(stage === undefined ? [] : ([['CLOUDMOM_STAGE', str(stage)]] as [string, string][])),
      ['AzureFunctionsJobHost__functionTimeout', `'${clock(s.az.functionTimeoutSeconds)}'`],
      [
        'AzureFunctionsJobHost__extensions__serviceBus__maxMessageBatchSize',
        `'${s.spec.batchSize}'`,
      ],
      ...(s.az.sessions
        ? ([
            [
              'AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentSessions',
              `'${s.spec.concurrency}'`,
            ],
          ] as [string, string][])
        : []),
    ];
    w.line();
    w.line(
      `// ${s.spec.name}: its handlers (${s.spec.targets.map((t) => t.name).join(', ')}) on ${s.az.subscription}; batches of ${s.spec.batchSize}, ${s.spec.timeoutSeconds} s per handler.`,
    );
    w.line(`resource app_${s.id} 'Microsoft.Web/sites@2023-12-01' = {`);
    w.line(`  name: '\${namePrefix}-${s.spec.name}-\${suffix}'`);
    w.line('  location: location');
    w.line("  kind: 'functionapp,linux'");
    w.line(
      '  // checkov:skip=CKV_AZURE_222: zip deployment (func azure functionapp publish) needs the public SCM endpoint; the app has no HTTP functions',
    );
    w.line(
      '  // checkov:skip=CKV_AZURE_212: the Consumption plan scales out by itself on queue length; there are no fixed instances',
    );
    w.line(
      '  // checkov:skip=CKV_AZURE_213: the app has Service Bus triggers only; there is no HTTP endpoint to health-check',
    );
    w.line('  identity: {');
    w.line("    type: 'SystemAssigned'");
    w.line('  }');
    w.line('  properties: {');
    w.line('    serverFarmId: plan.id');
    w.line('    httpsOnly: true');
    w.line(
      '    clientCertEnabled: false // checkov:skip=CKV_AZURE_17: the app has Service Bus triggers only, no HTTP endpoints',
    );
    w.line('    siteConfig: {');
    w.line("      linuxFxVersion: 'Node|22'");
    w.line("      minTlsVersion: '1.2'");
    w.line("      ftpsState: 'Disabled'");
    w.line('      http20Enabled: true');
    w.line('      appSettings: [');
    for (const [name, value] of settings) w.line(`        { name: ${str(name)}, value: ${value} }`);
    w.line('      ]');
    w.line('    }');
    w.line('  }');
    w.line('}');
  }
  w.line();
}

function roles(w: Writer, topology: Topology, services: Service[]): void {
  w.line('// ---- Role assignments: data-plane rights only, each scoped to one entity ----');
  const assign = (
    name: string,
    scope: string,
    principal: string,
    role: keyof typeof AZURE_ROLES,
    comment: string,
  ) => {
    w.line();
    w.line(`// ${comment}`);
    w.line(`resource ${name} 'Microsoft.Authorization/roleAssignments@2022-04-01' = {`);
    w.line(`  scope: ${scope}`);
    w.line(`  name: guid(${scope}.id, ${principal.split('.')[0]}.id, ${role})`);
    w.line('  properties: {');
    w.line(`    roleDefinitionId: ${role}`);
    w.line(`    principalId: ${principal}`);
    w.line("    principalType: 'ServicePrincipal'");
    w.line('  }');
    w.line('}');
  };
  for (const s of services) {
    const principal = `app_${s.id}.identity.principalId`;
    assign(
      `${s.id}_receives`,
      `subscription_${s.id}`,
      principal,
      'serviceBusDataReceiver',
      `${s.spec.name} receives and settles (complete, abandon, dead-letter) on its subscription only.`,
    );
    assign(
      `${s.id}_sends_topic`,
      'topic',
      principal,
      'serviceBusDataSender',
      `${s.spec.name} publishes to the topic (handlers' publish(), add()'s reply targets).`,
    );
    if (s.spec.replies && topology.replies)
      assign(
        `${s.id}_sends_replies`,
        'replyQueue',
        principal,
        'serviceBusDataSender',
        `${s.spec.name} answers request() callers on the reply queue.`,
      );
    w.line();
    w.line(`// ${s.spec.name}'s Functions host keeps its state in the storage account.`);
    w.line(
      `resource ${s.id}_storage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [`,
    );
    w.line('  storageBlobDataOwner');
    w.line('  storageQueueDataContributor');
    w.line('  storageTableDataContributor');
    w.line(']: {');
    w.line('  scope: storage');
    w.line(`  name: guid(storage.id, app_${s.id}.id, role)`);
    w.line('  properties: {');
    w.line('    roleDefinitionId: role');
    w.line(`    principalId: ${principal}`);
    w.line("    principalType: 'ServicePrincipal'");
    w.line('  }');
    w.line('}]');
  }
  const client = (name: string, scope: string, role: keyof typeof AZURE_ROLES, comment: string) => {
    w.line();
    w.line(`// ${comment}`);
    w.line(
      `resource ${name} 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in clientPrincipalIds: {`,
    );
    w.line(`  scope: ${scope}`);
    w.line(`  name: guid(${scope}.id, principalId, ${role})`);
    w.line('  properties: {');
    w.line(`    roleDefinitionId: ${role}`);
    w.line('    principalId: principalId');
    w.line('  }');
    w.line('}]');
  };
  client('clients_send_topic', 'topic', 'serviceBusDataSender', 'Callers publish to the topic.');
  if (topology.replies)
    client(
      'clients_receive_replies',
      'replyQueue',
      'serviceBusDataReceiver',
      'Callers of request() read their replies (each its own session of the reply queue).',
    );
  w.line();
}

function outputs(w: Writer, names: TopologyNames, services: Service[]): void {
  w.line(`output serviceBusNamespace string = '\${namespace.name}.servicebus.windows.net'`);
  w.line('output topicName string = topicName');
  if (names.replies) w.line('output replyQueueName string = replyQueueName');
  w.line('output functionApps object = {');
  for (const s of services) w.line(`  ${str(s.spec.name)}: app_${s.id}.name`);
  w.line('}');
  w.line('output subscriptions object = {');
  for (const s of services) w.line(`  ${str(s.spec.name)}: subscription_${s.id}.name`);
  w.line('}');
}

/** A Bicep string literal. */
function str(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\$\{/g, '\\${')}'`;
}

/** A Bicep identifier part for a service name. */
function identifier(name: string): string {
  return name.replace(/-/g, '_');
}

/** Seconds as an ISO 8601 duration (`PT30S`, `PT1H`, `P4D`). */
function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const time = `${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s ? `${s}S` : ''}`;
  return `P${d ? `${d}D` : ''}${time ? `T${time}` : ''}` || 'PT0S';
}

/** Seconds as `hh:mm:ss` (host.json's `functionTimeout`). */
function clock(seconds: number): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(seconds / 3600))}:${two(Math.floor((seconds % 3600) / 60))}:${two(seconds % 60)}`;
}
