"""Timers that reconcile (POLL_SCHEDULE) and watch expiry (EXPIRY_SCHEDULE). Work in shared.flows.timers."""

import typing

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("reconcile")
@bp.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="alerts", queue_name="%ALERT_QUEUE%", connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="deployments", queue_name="%DEPLOY_QUEUE%", connection="AzureWebJobsStorage")
def reconcile_timer(
    timer: func.TimerRequest, alerts: func.Out[typing.List[str]], deployments: func.Out[typing.List[str]]
) -> None:
    from shared.flows.timers import on_reconcile

    on_reconcile(timer, alerts, deployments)


@bp.function_name("expiry")
@bp.timer_trigger(arg_name="timer", schedule="%EXPIRY_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="alerts", queue_name="%ALERT_QUEUE%", connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="deployments", queue_name="%DEPLOY_QUEUE%", connection="AzureWebJobsStorage")
def expiry_timer(
    timer: func.TimerRequest, alerts: func.Out[typing.List[str]], deployments: func.Out[typing.List[str]]
) -> None:
    from shared.flows.timers import on_expiry

    on_expiry(timer, alerts, deployments)
