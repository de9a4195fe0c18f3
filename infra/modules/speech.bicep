// The Speech resource the autopilot manages. S0 (Custom Speech needs a paid tier), a custom subdomain (required for
// Entra ID auth: the token is checked against this resource), and local auth disabled, so keys don't work at all.

@minLength(2)
@maxLength(64)
@description('Speech resource name; also its custom subdomain (https://<name>.cognitiveservices.azure.com), which must be globally unique.')
param name string

@description('Azure region. Custom Speech training with audio needs a region with dedicated training hardware.')
param location string

@description('Tags applied to the resource.')
param tags object = {}

resource speech 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: Public network access stays on: the Flex Consumption app runs without VNet integration and calls Speech over its public endpoint. Only Entra ID tokens are accepted (disableLocalAuth) and only the app's identity holds a Speech role.
  name: name
  location: location
  tags: tags
  kind: 'SpeechServices'
  sku: {
    name: 'S0'
  }
  // The resource's own identity: unused by default, needed for the storage hardening option (trusted-service
  // access with a Storage Blob Data Reader role) described in infra/README.md.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

@description('Speech resource name.')
output name string = speech.name

@description('Speech resource id.')
output resourceId string = speech.id

@description('Custom-subdomain endpoint, e.g. https://<name>.cognitiveservices.azure.com/ (the app setting SPEECH_ENDPOINT).')
output endpoint string = speech.properties.endpoint

@description('Principal id of the resource\'s system-assigned identity (for the trusted-service hardening option).')
output principalId string = speech.identity.principalId
