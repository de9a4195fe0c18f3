// The app's storage account: the training container users drop zips into, the deploy / alert / poison queues,
// the Flex Consumption deployment package container, and the Functions host's own state (AzureWebJobsStorage).
// Entra ID only: Shared Key access is off, so there are no account keys to leak; the app reaches it with its
// managed identity and hands the Speech service a user-delegation SAS (signed with an Entra-issued key).

@minLength(3)
@maxLength(24)
@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Private blob containers to create.')
param containerNames array

@description('Storage queues to create.')
param queueNames array

@minValue(1)
@maxValue(365)
@description('Days a deleted or overwritten blob (or deleted container) can be recovered.')
param softDeleteDays int = 7

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Network default Allow is required: the Speech service GETs each dataset's contentUrl (a user-delegation SAS URL) from outside any network we control, and Flex Consumption without VNet integration reaches storage over its public endpoint. Access is still Entra-only (Shared Key off). See infra/README.md, "Network choice", for the hardening path.
  // checkov:skip=CKV_AZURE_59: Public network access stays enabled for the same reason as CKV_AZURE_35 (the Speech service fetches contentUrl from outside); no private endpoints by default.
  // checkov:skip=CKV_AZURE_206: Locally redundant storage is enough: the account holds transient training uploads (the source of truth stays with whoever uploads them), queue messages and a re-deployable code package; ZRS/GRS would add cost and is not offered in every Flex Consumption region.
  // checkov:skip=CKV_AZURE_33: Storage Analytics classic queue logging writes to $logs with Shared Key semantics and is being retired; queue activity is already visible in the app's Application Insights traces.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

@description('Storage account name.')
output name string = storageAccount.name

@description('Storage account resource id.')
output resourceId string = storageAccount.id

@description('Blob service endpoint, with a trailing slash.')
output blobEndpoint string = storageAccount.properties.primaryEndpoints.blob

@description('Queue service endpoint, with a trailing slash.')
output queueEndpoint string = storageAccount.properties.primaryEndpoints.queue
