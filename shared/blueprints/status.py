"""The status page: `GET /api/status` (function key), HTML for people, `?format=json` for scripts.

Read-only: it lists the Speech resource and the training container (no lock, no write). Work in
shared.flows.status, imported on first call.
"""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("status")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.flows.status import on_request

    return on_request(req)
