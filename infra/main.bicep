// Custom Speech Autopilot: everything `azd up` creates, in one resource group (so `azd down` removes it all).
//
// Identity-only: one user-assigned managed identity runs the app; storage has Shared Key access off, the Speech
// resource and Application Insights have local (key) auth off. No key or connection string is stored anywhere.
//
// Security-relevant resources (storage, Speech, the Function App, role assignments, alert rules) are declared as
// plain resources in ./modules so checkov can inspect them (it cannot see inside registry modules); commodity
// resources use Azure Verified Modules, pinned.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------------------
// Parameters (azd fills them from main.parameters.json and `azd env set`)
// ---------------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment. Names the resource group and seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for all resources. Pick one that offers both Flex Consumption and Custom Speech training (for example eastus, westeurope, southeastasia).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the user or service principal running azd (azd sets AZURE_PRINCIPAL_ID). It gets data access to upload zips to the training container and to read the queues. Empty: no access granted.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principal principalId is (azd sets AZURE_PRINCIPAL_TYPE).')
param principalType string = 'User'

@description('Email address that receives warning and critical alerts. Empty: the action group is created without receivers.')
param alertEmail string = ''

@secure()
@description('Optional Teams (Workflows) or Slack incoming-webhook URL the app posts alerts to (app setting ALERT_WEBHOOK_URL). It embeds a secret: set it with `azd env set ALERT_WEBHOOK_URL ...`, never commit it.')
param alertWebhookUrl string = ''

@description('Optional Custom Speech project URL or id that datasets and models are attached to (app setting SPEECH_PROJECT). Empty: none.')
param speechProject string = ''

@description('Speech to text REST API version the app calls (app setting SPEECH_API_VERSION).')
param speechApiVersion string = '2025-10-15'

@description('Retrain a serving model hands-off on the newest base model before it expires, and deploy the retrain (app setting AUTO_RETRAIN).')
param autoRetrain bool = true

@description('Deploy (or move) the endpoint automatically when a model succeeds (app setting AUTO_DEPLOY).')
param autoDeploy bool = true

@description('NCRONTAB schedule of the reconcile timer (app setting POLL_SCHEDULE).')
param pollSchedule string = '0 */5 * * * *'

@description('NCRONTAB schedule of the model expiry check (app setting EXPIRY_SCHEDULE).')
param expirySchedule string = '0 0 6 * * *'

@description('Comma-separated day counts before a model expires at which a warning is raised (app setting EXPIRY_WARNING_DAYS).')
param expiryWarningDays string = '30,14,7,1'

@minValue(1)
@maxValue(168)
@description('Lifetime in hours of the user-delegation SAS URL handed to the Speech service as contentUrl (app setting SAS_LIFETIME_HOURS).')
param sasLifetimeHours int = 48

@allowed([
  'info'
  'warning'
  'critical'
])
@description('Least severe alert that is also POSTed to the webhook; every alert still goes to the queue and the log (app setting ALERT_WEBHOOK_MIN_SEVERITY).')
param alertWebhookMinSeverity string = 'warning'

@allowed([
  'auto'
  'required'
  'off'
])
@description('Word-error-rate gate before hands-off deployments: auto (when the locale has test data), required, off (app setting QUALITY_GATE).')
param qualityGate string = 'auto'

@description('Percentage points of word error rate a model trained on changed data may lose against the serving model and still deploy (app setting QUALITY_MAX_WER_REGRESSION).')
param qualityMaxWerRegression string = '0'

@description('Percentage points of word error rate an expiry retrain may lose against the expiring model and still deploy (app setting QUALITY_EXPIRY_MAX_WER_REGRESSION).')
param qualityExpiryMaxWerRegression string = '2'

@allowed([
  'contentUrl'
  'blocks'
])
@description('How a dropped zip reaches the Speech service: contentUrl (a read-only SAS) or blocks (the app streams it; for storage the service cannot reach) (app setting DATASET_UPLOAD).')
param datasetUpload string = 'contentUrl'

@description('Turn on App Service Authentication (Easy Auth v2) on the Function App, for its HTTP functions (the status page, GET /api/status): every request then needs a Microsoft Entra ID access token for appServiceAuthClientId, otherwise 401. The Event Grid blob webhook (/runtime/webhooks/blobs) stays reachable with its system key. Off by default.')
param enableAppServiceAuth bool = false

@description('Application (client) id of the Entra ID app registration that represents the Function App: tokens must be issued for it (audience api://<id> or <id>). Required when enableAppServiceAuth is true (without it no token is accepted: every request but the blob webhook gets 401).')
param appServiceAuthClientId string = ''

@description('Entra ID tenant (id) that issues the tokens. Empty: the tenant of the subscription.')
param appServiceAuthTenantId string = ''

@allowed([
  'RedirectToLoginPage'
  'Return401'
])
@description('What App Service Authentication does with a request that has no token: RedirectToLoginPage (a person opening the status page in a browser signs in with Entra ID; the app registration needs the redirect URI https://<host>/.auth/login/aad/callback and ID tokens) or Return401 (scripts and services only).')
param appServiceAuthUnauthenticated string = 'RedirectToLoginPage'

@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most Flex Consumption instances the app may scale out to: 40 (the lowest maximum Flex accepts, and plenty for an app that serializes its Speech changes) to 1000.')
param maximumInstanceCount int = 40

// ---------------------------------------------------------------------------------------------------------------
// Names. The queue and container names are the app's contract: they are passed to storage and, unchanged, to the
// app settings the bindings read (%TRAINING_CONTAINER%, %DEPLOY_QUEUE%, %ALERT_QUEUE%).
// ---------------------------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var trainingContainerName = 'training'
var deployQueueName = 'speech-deployments'
var alertQueueName = 'speech-alerts'
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var storageAccountName = 'st${resourceToken}'
var speechAccountName = 'spch-${resourceToken}'
var systemTopicName = 'evgt-${resourceToken}'
// Where Event Grid puts blob events it could not deliver to the app's webhook (scripts/postdeploy.* wire it).
var deadLetterContainerName = 'deadletter'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------------------------
// Identity and monitoring (Azure Verified Modules)
// ---------------------------------------------------------------------------------------------------------------

module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'log-analytics'
  scope: rg
  params: {
    name: 'log-${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

module appInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'app-insights'
  scope: rg
  params: {
    name: 'appi-${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Data: storage (training zips, queues, the deployment package) and the Speech resource
// ---------------------------------------------------------------------------------------------------------------

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    containerNames: [
      trainingContainerName
      deploymentContainerName
      deadLetterContainerName
    ]
    queueNames: [
      deployQueueName
      '${deployQueueName}-poison'
      alertQueueName
    ]
  }
}

module speech 'modules/speech.bicep' = {
  name: 'speech'
  scope: rg
  params: {
    name: speechAccountName
    location: location
    tags: tags
  }
}

// Blob events of the storage account. The subscription to the app's blob webhook is created by
// scripts/postdeploy.sh, because the webhook's blobs_extension key only exists once the code is deployed.
// The topic's system-assigned identity writes undeliverable events to the dead-letter container (storage takes
// no Shared Key, so dead-lettering goes through Entra ID: Event Grid's documented managed-identity approach).
module systemTopic 'br/public:avm/res/event-grid/system-topic:0.6.1' = {
  name: 'event-grid-system-topic'
  scope: rg
  params: {
    name: systemTopicName
    location: location
    tags: tags
    source: storage.outputs.resourceId
    topicType: 'Microsoft.Storage.StorageAccounts'
    managedIdentities: {
      systemAssigned: true
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Access: least-privilege role assignments (before the app starts, so its first run can reach storage)
// ---------------------------------------------------------------------------------------------------------------

module roles 'modules/role-assignments.bicep' = {
  name: 'role-assignments'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    speechAccountName: speech.outputs.name
    applicationInsightsName: appInsights.outputs.name
    trainingContainerName: trainingContainerName
    systemTopicName: systemTopic.outputs.name
    deadLetterContainerName: deadLetterContainerName
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Compute: Flex Consumption plan and the Function App
// ---------------------------------------------------------------------------------------------------------------

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'app-service-plan'
  scope: rg
  params: {
    name: 'plan-${resourceToken}'
    location: location
    tags: tags
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  dependsOn: [
    roles
  ]
  params: {
    name: functionAppName
    location: location
    tags: union(tags, {
      'azd-service-name': 'api'
    })
    planResourceId: plan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityResourceId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    applicationInsightsName: appInsights.outputs.name
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    enableAppServiceAuth: enableAppServiceAuth
    appServiceAuthClientId: appServiceAuthClientId
    appServiceAuthUnauthenticated: appServiceAuthUnauthenticated
    appServiceAuthTenantId: empty(appServiceAuthTenantId) ? tenant().tenantId : appServiceAuthTenantId
    // What the app code reads (shared/settings.py). SPEECH_KEY is deliberately absent: the app authenticates to
    // Speech with the managed identity (Entra ID); the Speech resource has local auth disabled anyway.
    appSettings: {
      SPEECH_ENDPOINT: speech.outputs.endpoint
      SPEECH_API_VERSION: speechApiVersion
      SPEECH_PROJECT: speechProject
      TRAINING_CONTAINER: trainingContainerName
      DEPLOY_QUEUE: deployQueueName
      ALERT_QUEUE: alertQueueName
      EXPIRY_WARNING_DAYS: expiryWarningDays
      POLL_SCHEDULE: pollSchedule
      EXPIRY_SCHEDULE: expirySchedule
      AUTO_RETRAIN: string(autoRetrain)
      AUTO_DEPLOY: string(autoDeploy)
      SAS_LIFETIME_HOURS: string(sasLifetimeHours)
      ALERT_WEBHOOK_MIN_SEVERITY: alertWebhookMinSeverity
      QUALITY_GATE: qualityGate
      QUALITY_MAX_WER_REGRESSION: qualityMaxWerRegression
      QUALITY_EXPIRY_MAX_WER_REGRESSION: qualityExpiryMaxWerRegression
      DATASET_UPLOAD: datasetUpload
    }
    // Secrets go only to the module's @secure() parameter, so they stay out of the deployment history.
    secretAppSettings: {
      ALERT_WEBHOOK_URL: alertWebhookUrl
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Alerting: email on every warning or critical alert the app logs
// ---------------------------------------------------------------------------------------------------------------

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: resourceToken
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    alertEmail: alertEmail
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs: azd stores them in .azure/<env>/.env; scripts/postdeploy.sh reads them
// ---------------------------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output AZURE_FUNCTION_HOSTNAME string = functionApp.outputs.defaultHostName
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.resourceId
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output TRAINING_CONTAINER_NAME string = trainingContainerName
output DEPLOY_QUEUE_NAME string = deployQueueName
output ALERT_QUEUE_NAME string = alertQueueName
output EVENTGRID_SYSTEM_TOPIC_NAME string = systemTopicName
output EVENTGRID_DEADLETTER_CONTAINER_NAME string = deadLetterContainerName
output SPEECH_ENDPOINT string = speech.outputs.endpoint
output SPEECH_RESOURCE_NAME string = speech.outputs.name
output APPLICATIONINSIGHTS_NAME string = appInsights.outputs.name
output LOG_ANALYTICS_WORKSPACE_NAME string = logAnalytics.outputs.name
