#!/bin/sh
# azd postdeploy hook: subscribe the app's blob-trigger webhook to BlobCreated events of the training container.
#
# Runs after `azd deploy` / `azd up`, because the webhook key (the blobs_extension system key) only exists once the
# host has started with the code that has the Event Grid blob trigger. Idempotent: re-running updates the
# subscription in place (the key is stable across deployments).
#
# Events Event Grid cannot deliver (30 attempts or 24 hours) are dead-lettered as blobs into the deadletter
# container, written by the system topic's managed identity (storage takes no Shared Key). The system-topic
# subcommand of the Azure CLI has no dead-letter identity option, so the subscription is created on the storage
# account, the source of the system topic, which puts it on that system topic.
#
# Reads azd outputs from the environment (azd exports them to hooks): AZURE_RESOURCE_GROUP, AZURE_FUNCTION_NAME,
# EVENTGRID_SYSTEM_TOPIC_NAME, TRAINING_CONTAINER_NAME, AZURE_STORAGE_ACCOUNT_ID,
# EVENTGRID_DEADLETTER_CONTAINER_NAME and, if set, AZURE_FUNCTION_HOSTNAME.
# Never prints the webhook URL: it carries the key.
set -eu

# The Event Grid blob trigger in function_app.py (shared/blueprints/ingest.py) and its subscription.
INGEST_FUNCTION="ingest_zip"
SUBSCRIPTION_NAME="training-zip-created"

for var in AZURE_RESOURCE_GROUP AZURE_FUNCTION_NAME EVENTGRID_SYSTEM_TOPIC_NAME TRAINING_CONTAINER_NAME \
  AZURE_STORAGE_ACCOUNT_ID EVENTGRID_DEADLETTER_CONTAINER_NAME; do
  eval "value=\${$var:-}"
  if [ -z "$value" ]; then
    echo "postdeploy: $var is not set; run this through azd (azd provision first if the infrastructure is older)" >&2
    exit 1
  fi
done
if ! command -v az >/dev/null 2>&1; then
  echo "postdeploy: the Azure CLI (az) is required to create the Event Grid subscription" >&2
  exit 1
fi

group="$AZURE_RESOURCE_GROUP"
app="$AZURE_FUNCTION_NAME"
host="${AZURE_FUNCTION_HOSTNAME:-}"
if [ -z "$host" ]; then
  # Never derive it from the app name: new apps get <name>-<hash>.<region>-01.azurewebsites.net.
  host=$(az functionapp show -g "$group" -n "$app" --query defaultHostName -o tsv)
fi

# The key appears once the host has started and indexed the Event Grid blob trigger; a cold Flex Consumption app
# may take a minute or two. Poking the host wakes it up.
echo "postdeploy: waiting for the blobs_extension key of $app"
key=""
attempt=0
while [ -z "$key" ]; do
  key=$(az functionapp keys list -g "$group" -n "$app" --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)
  [ -n "$key" ] && break
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "postdeploy: no blobs_extension key after 5 minutes. Check that $INGEST_FUNCTION is indexed" >&2
    echo "  (az functionapp function list -g $group -n $app) and the app logs, then re-run: azd hooks run postdeploy" >&2
    exit 1
  fi
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null --max-time 20 "https://$host/" || true
  fi
  sleep 10
done

endpoint="https://$host/runtime/webhooks/blobs?functionName=Host.Functions.$INGEST_FUNCTION&code=$key"
deadletter="$AZURE_STORAGE_ACCOUNT_ID/blobServices/default/containers/$EVENTGRID_DEADLETTER_CONTAINER_NAME"

# Event Grid validates the webhook when the subscription is created; retry in case the app is still cold (or the
# system topic's role on the dead-letter container is still propagating after a first provision).
echo "postdeploy: subscribing $INGEST_FUNCTION to BlobCreated events of container $TRAINING_CONTAINER_NAME (*.zip)"
attempt=0
until az eventgrid event-subscription create \
  --name "$SUBSCRIPTION_NAME" \
  --source-resource-id "$AZURE_STORAGE_ACCOUNT_ID" \
  --endpoint-type webhook \
  --endpoint "$endpoint" \
  --included-event-types Microsoft.Storage.BlobCreated \
  --subject-begins-with "/blobServices/default/containers/$TRAINING_CONTAINER_NAME/blobs/" \
  --subject-ends-with ".zip" \
  --max-delivery-attempts 30 \
  --event-ttl 1440 \
  --deadletter-identity systemassigned \
  --deadletter-identity-endpoint "$deadletter" \
  --only-show-errors --output none; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 5 ]; then
    echo "postdeploy: could not create the Event Grid subscription (webhook validation failed?)." >&2
    echo "  The reconcile timer still picks up uploaded zips, only later. Re-run: azd hooks run postdeploy" >&2
    exit 1
  fi
  echo "postdeploy: retrying in 20 s (attempt $attempt of 5)"
  sleep 20
done
echo "postdeploy: Event Grid subscription $SUBSCRIPTION_NAME is in place on system topic" \
  "$EVENTGRID_SYSTEM_TOPIC_NAME (dead letters: container $EVENTGRID_DEADLETTER_CONTAINER_NAME)"
