// cloudmom example topology on Azure (examples/app.ts, deployed by examples/azure):
//
//   publishers ──► topic `cloudmom` ──► one subscription per handler group, filtered on the
//                                        message subject (= cloudmom target): hello, sum, audit, flaky
//   replies    ──► queue `cloudmom-replies`, session-enabled: each request() caller reads its own
//                  session (replySessions), so callers share the queue without stealing replies
//   inbox      ──► queue `cloudmom-inbox` (point-to-point publishing, same handlers)
//
// The Function App reads with its system-assigned managed identity: "Azure Service Bus Data
// Receiver" on the topic and the inbox, "Azure Service Bus Data Sender" on the topic, the
// reply queue and the inbox. The namespace has local (SAS) authentication disabled, so no
// connection string with any right — let alone Manage — exists.
//
// Deploy: az deployment group create -g <rg> -f infra/azure/main.bicep -p namePrefix=<prefix>

@description('Prefix of every resource name (letters and digits, 3 to 11 characters).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'cloudmom'

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Handler groups: one topic subscription each, filtered on subject = the target.')
param targets array = [
  'hello'
  'sum'
  'audit'
  'flaky'
]

@description('Deliveries before Service Bus dead-letters a message (MaxDeliveryCountExceeded). Keep it above the broker option maxDeliveries (default 5) so cloudmom dead-letters first, with the handler error as reason.')
@minValue(1)
param maxDeliveryCount int = 10

@description('Peek-lock duration; the SDK renews locks while a handler runs.')
param lockDuration string = 'PT1M'

var suffix = uniqueString(resourceGroup().id, namePrefix)
var namespaceName = '${namePrefix}-sb-${suffix}'
var functionAppName = '${namePrefix}-fn-${suffix}'
var storageName = toLower(take('${namePrefix}st${suffix}', 24))
var topicName = 'cloudmom'
var replyQueueName = 'cloudmom-replies'
var inboxQueueName = 'cloudmom-inbox'

// Built-in role definition ids.
var serviceBusDataSender = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39')
var serviceBusDataReceiver = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0')
var storageBlobDataOwner = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
var storageQueueDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
var storageTableDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')

// ---- Service Bus ----

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: namespaceName
  location: location
  sku: {
    name: 'Standard' // topics and sessions need Standard or Premium; Standard takes 256 KB messages
    tier: 'Standard'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    disableLocalAuth: true // Entra ID only: no SAS keys, no connection strings
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled' // the Consumption plan has no VNet integration; access is gated by Entra ID roles
  }
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = {
  parent: namespace
  name: topicName
  properties: {
    maxSizeInMegabytes: 1024
    defaultMessageTimeToLive: 'P14D'
  }
}

resource subscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = [for target in targets: {
  parent: topic
  name: target
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
  }
}]

// Naming the rule `$Default` replaces the catch-all TrueFilter a new subscription gets.
resource rules 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2022-10-01-preview' = [for (target, i) in targets: {
  parent: subscriptions[i]
  name: '$Default'
  properties: {
    filterType: 'CorrelationFilter'
    correlationFilter: {
      label: target // the AMQP subject, where cloudmom puts the target
    }
  }
}]

resource replyQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: replyQueueName
  properties: {
    // Shared by every requester: each reads its own session (ServiceBusBroker replySessions),
    // replies carry the request's replyToSessionId as their session id.
    requiresSession: true
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'PT1H' // unclaimed replies expire into the dead-letter sub-queue
  }
}

resource inboxQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: inboxQueueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
  }
}

// ---- Function App (Linux Consumption, Node 22) ----

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is computed (toLower/take/uniqueString, ≤ 24 lowercase letters and digits); checkov cannot evaluate it
  name: storageName
  location: location
  sku: {
    name: 'Standard_GRS'
  }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // the Functions host uses its managed identity (AzureWebJobsStorage__accountName)
    publicNetworkAccess: 'Enabled' // checkov:skip=CKV_AZURE_59: the Consumption plan host reaches its storage over the public endpoint
    networkAcls: {
      defaultAction: 'Allow' // checkov:skip=CKV_AZURE_35: as above; no VNet on the Consumption plan
      bypass: 'AzureServices'
    }
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${namePrefix}-plan-${suffix}'
  location: location
  kind: 'functionapp'
  // checkov:skip=CKV_AZURE_225: the Consumption (Y1) plan has no zone redundancy; use Flex Consumption or Premium for it
  sku: {
    name: 'Y1'
    tier: 'Dynamic'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2023-12-01' = {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  // checkov:skip=CKV_AZURE_222: zip deployment (func azure functionapp publish) needs the public SCM endpoint; the app has no HTTP functions
  // checkov:skip=CKV_AZURE_212: the Consumption plan scales out by itself on queue length; there are no fixed instances
  // checkov:skip=CKV_AZURE_213: the app has Service Bus triggers only; there is no HTTP endpoint to health-check
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false // checkov:skip=CKV_AZURE_17: the app has Service Bus triggers only, no HTTP endpoints
    siteConfig: {
      linuxFxVersion: 'Node|22'
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'node' }
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        // Identity-based connection: the trigger and @azure/service-bus (DefaultAzureCredential) use the managed identity.
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: '${namespace.name}.servicebus.windows.net' }
        { name: 'CLOUDMOM_TOPIC', value: topicName }
        { name: 'CLOUDMOM_REPLY_QUEUE', value: replyQueueName }
      ]
    }
  }
}

// ---- Role assignments: data-plane rights only, scoped to the entities ----

resource topicReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: topic
  name: guid(topic.id, functionApp.id, serviceBusDataReceiver)
  properties: {
    roleDefinitionId: serviceBusDataReceiver
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource topicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: topic
  name: guid(topic.id, functionApp.id, serviceBusDataSender)
  properties: {
    roleDefinitionId: serviceBusDataSender
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource replySender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: replyQueue
  name: guid(replyQueue.id, functionApp.id, serviceBusDataSender)
  properties: {
    roleDefinitionId: serviceBusDataSender
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource inboxReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: inboxQueue
  name: guid(inboxQueue.id, functionApp.id, serviceBusDataReceiver)
  properties: {
    roleDefinitionId: serviceBusDataReceiver
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource inboxSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: inboxQueue
  name: guid(inboxQueue.id, functionApp.id, serviceBusDataSender)
  properties: {
    roleDefinitionId: serviceBusDataSender
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]: {
  scope: storage
  name: guid(storage.id, functionApp.id, role)
  properties: {
    roleDefinitionId: role
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}]

output serviceBusNamespace string = '${namespace.name}.servicebus.windows.net'
output functionAppName string = functionApp.name
output topicName string = topicName
output replyQueueName string = replyQueueName
output inboxQueueName string = inboxQueueName
