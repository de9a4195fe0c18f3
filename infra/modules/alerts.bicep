// Email on warning and critical alerts. The app logs every alert it raises as one trace line
// (shared/alerts.py, log_alert):
//
//   ALERT severity=<info|warning|critical> kind=<kind> locale=<locale|-> resource=<resource> id=<id>: <message>
//
// at WARNING level for warning and ERROR for critical. In the workspace-based schema those lines land in the
// AppTraces table with the text in Message. The query also accepts an `alert_severity` custom dimension
// (Properties) in case the app later logs structured fields instead. One rule per severity, so the Azure alert
// severity matches (critical -> Sev1, warning -> Sev2).

@description('Suffix for resource names (the environment\'s resource token).')
param namePrefix string

@description('Azure region of the alert rules (same as the workspace).')
param location string

@description('Tags applied to the resources.')
param tags object = {}

@description('Log Analytics workspace the app\'s Application Insights writes to; the rules query its AppTraces table.')
param workspaceResourceId string

@description('Email address notified when a rule fires. Empty: the action group has no receivers.')
param alertEmail string = ''

@description('How often the rules run and how far back each run looks (ISO 8601 duration).')
param evaluationFrequency string = 'PT5M'

// {severity} is replaced per rule. Message is parsed with extract(), so extra fields after the severity or a
// different order of the other key=value pairs don't matter.
var alertQuery = '''
AppTraces
| where Message startswith "ALERT " or isnotempty(tostring(Properties.alert_severity))
| extend AlertSeverity = tolower(coalesce(tostring(Properties.alert_severity), extract(@"^ALERT severity=(\w+)", 1, Message)))
| where AlertSeverity == "{severity}"
| extend AlertKind = extract(@"\bkind=(\S+)", 1, Message), AlertResource = extract(@"\bresource=(\S+)", 1, Message)
| project TimeGenerated, AlertSeverity, AlertKind, AlertResource, Message, AppRoleName, OperationId
'''

var levels = [
  {
    name: 'critical'
    severity: 1
    description: 'The Custom Speech Autopilot logged a critical alert (for example a model that expired, an endpoint that failed, a retrain that is impossible, or a deployment request moved to the poison queue).'
  }
  {
    name: 'warning'
    severity: 2
    description: 'The Custom Speech Autopilot logged a warning alert (for example a rejected zip, a failed dataset or model, or a model close to expiry).'
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${namePrefix}'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'speechauto'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'alert-email'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for level in levels: {
  name: 'alert-${namePrefix}-${level.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Custom Speech Autopilot: ${level.name} alert'
    description: level.description
    severity: level.severity
    enabled: true
    scopes: [
      workspaceResourceId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    // Each alert line is a discrete event: fire per evaluation window, never "resolve".
    autoMitigate: false
    // On a brand-new workspace AppTraces may not exist until the app's first telemetry arrives.
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: replace(alertQuery, '{severity}', level.name)
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

@description('Action group resource id.')
output actionGroupId string = actionGroup.id
