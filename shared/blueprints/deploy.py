"""Queue-triggered deployment and its poison queue. Work in shared.flows.deploy.

Transient failures raise, so the host retries; after maxDequeueCount (host.json) the host moves the message to
`<DEPLOY_QUEUE>-poison`, where `deploy_poison` raises a `deploy-poisoned` alert with the original message.
Alerts leave through the queue output binding: the host writes them before it completes the message, so an alert
is delivered before the message counts as handled (a failed write retries the message; alert ids dedupe).

`typing.List[str]`, not `list[str]`: the worker refuses `func.Out[list[str]]` when it indexes the app.
"""

import typing

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("deploy")
@bp.queue_trigger(arg_name="msg", queue_name="%DEPLOY_QUEUE%", connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="alerts", queue_name="%ALERT_QUEUE%", connection="AzureWebJobsStorage")
def deploy(msg: func.QueueMessage, alerts: func.Out[typing.List[str]]) -> None:
    from shared.flows.deploy import on_message

    on_message(msg, alerts)


@bp.function_name("deploy_poison")
@bp.queue_trigger(arg_name="msg", queue_name="%DEPLOY_QUEUE%-poison", connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="alerts", queue_name="%ALERT_QUEUE%", connection="AzureWebJobsStorage")
def deploy_poison(msg: func.QueueMessage, alerts: func.Out[typing.List[str]]) -> None:
    from shared.flows.deploy import on_poison

    on_poison(msg, alerts)
