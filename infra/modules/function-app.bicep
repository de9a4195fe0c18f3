// The Function App on a Flex Consumption plan: Python 3.13, code package pulled from a blob container with the
// user-assigned identity, and identity-based connections everywhere (no AzureWebJobsStorage connection string,
// no Speech key, Application Insights with Entra ID auth).

@description('Function App name (also the default host name prefix).')
param name string

@description('Azure region.')
param location string

@description('Tags; must include azd-service-name so `azd deploy` finds the app.')
param tags object

@description('Resource id of the Flex Consumption (FC1) plan.')
param planResourceId string

@description('Storage account holding AzureWebJobsStorage state, the queues and the deployment package.')
param storageAccountName string

@description('Blob container the deployment package is uploaded to (created by the storage module).')
param deploymentContainerName string

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityResourceId string

@description('Client id of that identity (AZURE_CLIENT_ID for DefaultAzureCredential, and the storage connection).')
param identityClientId string

@description('Application Insights component the app sends telemetry to (local auth disabled: Entra ID only).')
param applicationInsightsName string

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most instances the app may scale out to; Flex Consumption accepts 40 to 1000.')
param maximumInstanceCount int = 40

@description('App Service Authentication (Easy Auth v2) on: requests need an Entra ID token, except the blob webhook.')
param enableAppServiceAuth bool = false

@description('Client id of the Entra ID app registration tokens are issued for (required when enableAppServiceAuth).')
param appServiceAuthClientId string = ''

@description('Entra ID tenant id that issues the tokens.')
param appServiceAuthTenantId string = ''

@allowed([
  'RedirectToLoginPage'
  'Return401'
])
@description('A request without a token: sent to the Entra ID sign-in page (browsers) or answered 401 (scripts).')
param appServiceAuthUnauthenticated string = 'RedirectToLoginPage'

@description('The app\'s own settings (what shared/settings.py reads). Host and identity settings are added here.')
param appSettings object

// A separate @secure() parameter: a secret passed in appSettings would be stored in plain text with this nested
// deployment's parameters (deployment history). Secure parameters are never stored or shown there.
@secure()
@description('App settings that carry a secret (ALERT_WEBHOOK_URL), merged into the app settings.')
param secretAppSettings object = {}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Host and identity settings. On Flex Consumption the runtime and version live in functionAppConfig, so
// FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION must not be set. The host keeps its diagnostic events in
// Table storage, hence the table endpoint (and the Storage Table Data Contributor role) as in the official templates.
var hostSettings = {
  AzureWebJobsStorage__blobServiceUri: storageAccount.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storageAccount.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storageAccount.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Client certificates cannot be required: Event Grid webhook delivery does not present one.
  // checkov:skip=CKV_AZURE_222: Public network access is required for Event Grid to deliver blob events to the webhook (no private endpoints by default); see infra/README.md, "Network choice".
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero by design (no always-ready instances), which keeps the idle cost near zero; timers and queues catch up after a cold start.
  // checkov:skip=CKV_AZURE_213: No HTTP endpoint to probe: the app is driven by timers, queues and Event Grid.
  // checkov:skip=CKV_AZURE_78: Flex Consumption refuses siteConfig.ftpsState (ARM error 51021); FTP is disabled by the 'ftp' basicPublishingCredentialsPolicies resource (allow: false) below.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: planResourceId
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientAffinityEnabled: false
    // Only site-config properties Flex Consumption supports. Newer Flex stamps refuse the others with ARM error
    // 51021 (seen: ftpsState, use32BitWorkerProcess, preWarmedInstanceCount, netFrameworkVersion,
    // functionsRuntimeScaleMonitoringEnabled, linuxFxVersion, functionAppScaleLimit). FTP is off through the
    // 'ftp' publishing-credentials policy below; remote debugging and Always On don't exist on Flex.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      cors: {
        allowedOrigins: []
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      // The worker library pinned in requirements.txt (azure-functions-runtime) is the 3.13 one.
      runtime: {
        name: 'python'
        version: '3.13'
      }
    }
  }
}

// No basic-auth publishing: azd deploys with Entra ID tokens.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// checkov runs its site-configuration ('web' config) checks on every Microsoft.Web/sites/config resource. This one is
// the 'appsettings' config, which has none of those properties: each skip below is that false positive.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: appsettings false positive (see above); there are no HTTP functions to authenticate anyway.
  // checkov:skip=CKV_AZURE_63: appsettings false positive (see above); HTTP file-system logs don't exist on Flex Consumption.
  // checkov:skip=CKV_AZURE_65: appsettings false positive (see above); detailed error pages don't exist on Flex Consumption.
  // checkov:skip=CKV_AZURE_66: appsettings false positive (see above); failed request tracing doesn't exist on Flex Consumption.
  // checkov:skip=CKV_AZURE_80: appsettings false positive (see above); .NET Framework version, and this is a Python app.
  // checkov:skip=CKV_AZURE_88: appsettings false positive (see above); Flex Consumption uses a blob deployment container, not Azure Files.
  // checkov:skip=CKV_AZURE_222: appsettings false positive (see above); public network access is decided, with its reason, on functionApp.
  parent: functionApp
  name: 'appsettings'
  properties: union(appSettings, secretAppSettings, hostSettings)
}

// App Service Authentication (Easy Auth v2) for the HTTP functions (the status page, auth level FUNCTION: a caller
// needs a token and the function key). Unauthenticated requests get 401, no login redirect: the callers are
// scripts and services. The Event Grid blob webhook is excluded: Event Grid calls it with the blobs_extension
// system key and no token. Always deployed, enabled or not, so turning it off again really switches it off. No
// client secret: validating bearer tokens needs none.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: authsettingsV2 false positive (checkov expects the v1 shape); this resource is the authentication setting, on when the operator sets enableAppServiceAuth (infra/README.md, "App Service Authentication").
  // checkov:skip=CKV_AZURE_63: authsettingsV2 false positive (a 'web' config check); HTTP file-system logs don't exist on Flex Consumption.
  // checkov:skip=CKV_AZURE_65: authsettingsV2 false positive (a 'web' config check); detailed error pages don't exist on Flex Consumption.
  // checkov:skip=CKV_AZURE_66: authsettingsV2 false positive (a 'web' config check); failed request tracing doesn't exist on Flex Consumption.
  // checkov:skip=CKV_AZURE_80: authsettingsV2 false positive (a 'web' config check); .NET Framework version, and this is a Python app.
  // checkov:skip=CKV_AZURE_88: authsettingsV2 false positive (a 'web' config check); Flex Consumption uses a blob deployment container, not Azure Files.
  // checkov:skip=CKV_AZURE_222: authsettingsV2 false positive (a 'web' config check); public network access is decided, with its reason, on functionApp.
  parent: functionApp
  name: 'authsettingsV2'
  // One site-config update at a time: App Service can refuse concurrent ones with a 409.
  dependsOn: [
    settings
  ]
  properties: {
    platform: {
      enabled: enableAppServiceAuth
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: appServiceAuthUnauthenticated
      excludedPaths: [
        '/runtime/webhooks/blobs'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: empty(appServiceAuthClientId) ? {} : {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: appServiceAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${appServiceAuthTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${appServiceAuthClientId}'
            appServiceAuthClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

@description('Function App name.')
output name string = functionApp.name

@description('Default host name. On newer apps it is <name>-<hash>.<region>-01.azurewebsites.net, so never derive it from the name.')
output defaultHostName string = functionApp.properties.defaultHostName

@description('https://<default host name>')
output uri string = 'https://${functionApp.properties.defaultHostName}'
