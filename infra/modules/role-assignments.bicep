// Least-privilege role assignments.
//
// The app's user-assigned identity:
//   Storage Blob Data Owner          on the storage account  - read zips, set blob index tags (blobs/tags/write),
//                                                               take leases, get the user delegation key for the
//                                                               contentUrl SAS, write the host's own blobs and
//                                                               pull the deployment package.
//   Storage Queue Data Contributor   on the storage account  - deploy / alert / poison queues and host queues:
//                                                               queue triggers, output bindings, and the messages
//                                                               the app sends itself (QueueClient.send_message).
//   Storage Table Data Contributor   on the storage account  - the Functions host's diagnostic events table.
//   Cognitive Services Speech Contributor on the Speech resource - create datasets, models and endpoints
//                                                               (no key listing: that needs other roles).
//   Monitoring Metrics Publisher     on Application Insights - send telemetry with Entra ID auth.
// The Event Grid system topic's system-assigned identity:
//   Storage Blob Data Contributor    on the dead-letter container - write the blob events it could not deliver.
// The deploying user (optional, principalId): upload zips to the training container, peek at the queues, read
// the dead letters.

@description('Principal id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('Storage account the app uses.')
param storageAccountName string

@description('Speech resource the app manages.')
param speechAccountName string

@description('Application Insights component the app sends telemetry to.')
param applicationInsightsName string

@description('Blob container users upload training zips to.')
param trainingContainerName string

@description('Event Grid system topic of the storage account; its system-assigned identity dead-letters events.')
param systemTopicName string

@description('Blob container the Event Grid subscription dead-letters undeliverable events to.')
param deadLetterContainerName string

@description('Object id of the deploying user or principal. Empty: no user access is granted.')
param userPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal userPrincipalId is.')
param userPrincipalType string = 'User'

// Built-in role definition ids (the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageQueueDataReader = '19e7f393-937e-4f77-808e-94535e297925'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var speechContributor = '0e75ca1e-0464-4b4d-8b93-68208a576181'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource trainingContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: trainingContainerName
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource speech 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: speechAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, storageBlobDataOwner)
  scope: storageAccount
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    description: 'Autopilot app: training zips, blob tags, leases, user delegation SAS, host state, code package.'
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    description: 'Autopilot app: deploy, alert and poison queues (triggers, bindings and direct sends).'
  }
}

resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, identityPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    description: 'Autopilot app: the Functions host diagnostic events table.'
  }
}

resource appSpeechContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(speech.id, identityPrincipalId, speechContributor)
  scope: speech
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', speechContributor)
    description: 'Autopilot app: Custom Speech datasets, models and endpoints.'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    description: 'Autopilot app: telemetry with Entra ID auth.'
  }
}

resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    description: 'Event Grid system topic: dead-letter blob events the app webhook did not accept.'
  }
}

resource userBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(trainingContainer.id, userPrincipalId, storageBlobDataContributor)
  scope: trainingContainer
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    description: 'Deploying user: upload training zips.'
  }
}

resource userQueueReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storageAccount.id, userPrincipalId, storageQueueDataReader)
  scope: storageAccount
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataReader)
    description: 'Deploying user: peek at the deploy, alert and poison queues.'
  }
}

resource userDeadLetterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(deadLetterContainer.id, userPrincipalId, storageBlobDataReader)
  scope: deadLetterContainer
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    description: 'Deploying user: read the blob events Event Grid could not deliver.'
  }
}
