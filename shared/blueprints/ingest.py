"""Blob trigger on the training container (Event Grid source: Flex Consumption cannot poll blobs).

The function gets an SDK BlobClient (model binding data), never the zip's bytes. Its work is in shared.flows,
imported on first call so that indexing the app stays cheap. Its alerts are sent to the alert queue directly,
before the blob's state records them (an output binding would leave only after the function returned).
"""

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blobext

bp = func.Blueprint()


@bp.function_name("ingest_zip")
@bp.blob_trigger(
    arg_name="blob",
    path="%TRAINING_CONTAINER%/{name}",
    connection="AzureWebJobsStorage",
    source=func.BlobSource.EVENT_GRID,
)
def ingest_zip(blob: blobext.BlobClient) -> None:
    from shared.flows.ingest import on_blob

    on_blob(blob)
