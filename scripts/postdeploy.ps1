# azd postdeploy hook (Windows): subscribe the app's blob-trigger webhook to BlobCreated events of the training
# container, dead-lettering undeliverable events into the deadletter container with the system topic's managed
# identity. Same steps as scripts/postdeploy.sh; see the comments there. Never prints the webhook URL (it carries
# the blobs_extension key).
$ErrorActionPreference = 'Stop'

# The Event Grid blob trigger in function_app.py (shared/blueprints/ingest.py) and its subscription.
$IngestFunction = 'ingest_zip'
$SubscriptionName = 'training-zip-created'

foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_NAME', 'EVENTGRID_SYSTEM_TOPIC_NAME', 'TRAINING_CONTAINER_NAME',
    'AZURE_STORAGE_ACCOUNT_ID', 'EVENTGRID_DEADLETTER_CONTAINER_NAME') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Write-Error "postdeploy: $name is not set; run this through azd (azd provision first if the infrastructure is older)"
    }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error 'postdeploy: the Azure CLI (az) is required to create the Event Grid subscription'
}

$group = $env:AZURE_RESOURCE_GROUP
$app = $env:AZURE_FUNCTION_NAME
$container = $env:TRAINING_CONTAINER_NAME
$hostName = $env:AZURE_FUNCTION_HOSTNAME
if (-not $hostName) {
    # Never derive it from the app name: new apps get <name>-<hash>.<region>-01.azurewebsites.net.
    $hostName = az functionapp show -g $group -n $app --query defaultHostName -o tsv
}

Write-Host "postdeploy: waiting for the blobs_extension key of $app"
$key = $null
for ($attempt = 1; -not $key; $attempt++) {
    $key = az functionapp keys list -g $group -n $app --query 'systemKeys.blobs_extension' -o tsv 2>$null
    if ($key) { break }
    if ($attempt -ge 30) {
        Write-Error "postdeploy: no blobs_extension key after 5 minutes. Check that $IngestFunction is indexed, then re-run: azd hooks run postdeploy"
    }
    try { Invoke-WebRequest -Uri "https://$hostName/" -TimeoutSec 20 -UseBasicParsing | Out-Null } catch { }
    Start-Sleep -Seconds 10
}

$endpoint = "https://$hostName/runtime/webhooks/blobs?functionName=Host.Functions.$IngestFunction&code=$key"
# az is a .cmd script on Windows: without literal quotes cmd.exe would cut the URL at '&'.
$endpointArg = if ($IsWindows -or $env:OS -eq 'Windows_NT') { '"' + $endpoint + '"' } else { $endpoint }
$storageId = $env:AZURE_STORAGE_ACCOUNT_ID
$deadletter = "$storageId/blobServices/default/containers/$($env:EVENTGRID_DEADLETTER_CONTAINER_NAME)"

Write-Host "postdeploy: subscribing $IngestFunction to BlobCreated events of container $container (*.zip)"
for ($attempt = 1; ; $attempt++) {
    # On the storage account (the system topic's source): only this form takes a dead-letter identity.
    az eventgrid event-subscription create `
        --name $SubscriptionName `
        --source-resource-id $storageId `
        --endpoint-type webhook `
        --endpoint $endpointArg `
        --included-event-types Microsoft.Storage.BlobCreated `
        --subject-begins-with "/blobServices/default/containers/$container/blobs/" `
        --subject-ends-with '.zip' `
        --max-delivery-attempts 30 `
        --event-ttl 1440 `
        --deadletter-identity systemassigned `
        --deadletter-identity-endpoint $deadletter `
        --only-show-errors --output none
    if ($LASTEXITCODE -eq 0) { break }
    if ($attempt -ge 5) {
        Write-Error 'postdeploy: could not create the Event Grid subscription (webhook validation failed?). Re-run: azd hooks run postdeploy'
    }
    Write-Host "postdeploy: retrying in 20 s (attempt $attempt of 5)"
    Start-Sleep -Seconds 20
}
Write-Host "postdeploy: Event Grid subscription $SubscriptionName is in place on system topic $($env:EVENTGRID_SYSTEM_TOPIC_NAME) (dead letters: container $($env:EVENTGRID_DEADLETTER_CONTAINER_NAME))"
