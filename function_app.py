"""The Functions app: registers the blueprints and nothing else. Decisions live in shared/, I/O at its edges."""

import azure.functions as func

from shared.blueprints import deploy, ingest, status, timers
from shared.logs import quiet_sdk_loggers

quiet_sdk_loggers()  # the worker's root logger is at INFO: keep the SDKs' per-request logging out of App Insights

app = func.FunctionApp()
app.register_functions(ingest.bp)
app.register_functions(timers.bp)
app.register_functions(deploy.bp)
app.register_functions(status.bp)
