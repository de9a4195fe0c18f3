"""The Functions app: registers the blueprints and nothing else. Decisions live in shared/, I/O at its edges."""

import azure.functions as func

from shared.blueprints import deploy, ingest, timers

app = func.FunctionApp()
app.register_functions(ingest.bp)
app.register_functions(timers.bp)
app.register_functions(deploy.bp)
