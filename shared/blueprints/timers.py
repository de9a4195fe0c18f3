"""Timers that reconcile (POLL_SCHEDULE) and watch expiry (EXPIRY_SCHEDULE). Work in shared.flows.timers.

A pass sends its alerts and deploy requests to their queues directly, before it records them (alert tokens,
`deployRequested`) on the Speech resource: an output binding would only leave after the function returned.
"""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("reconcile")
@bp.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%", run_on_startup=False)
def reconcile_timer(timer: func.TimerRequest) -> None:
    from shared.flows.timers import on_reconcile

    on_reconcile(timer)


@bp.function_name("expiry")
@bp.timer_trigger(arg_name="timer", schedule="%EXPIRY_SCHEDULE%", run_on_startup=False)
def expiry_timer(timer: func.TimerRequest) -> None:
    from shared.flows.timers import on_expiry

    on_expiry(timer)
