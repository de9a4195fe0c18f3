"""The autopilot lock's lease, as the holder knows it (issue #13, case 4): a failed renewal is retried while the
lease may still be ours; a 409 or a lease that ran out while renewals failed is lost for good, and from then on
every write under the lock raises LockLost (shared.guard). Short real waits (a lease of 0.3 s renews every 0.1 s)."""

from __future__ import annotations

import threading
import time

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from shared.guard import LockLost, before_write, guarded
from shared.storage import Lease, _keep_renewed


class FakeLeaseClient:
    """Answers renew() from a script: None succeeds, an exception fails; then succeeds."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.renewals = 0

    def renew(self, timeout=None):
        self.renewals += 1
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer


def conflict() -> HttpResponseError:
    error = HttpResponseError(message="There is already a lease present.")
    error.status_code = 409
    return error


def renewing(client: FakeLeaseClient, lease_seconds: float = 0.3):
    lease = Lease(client, lease_seconds, time.monotonic(), time.monotonic)
    done = threading.Event()
    thread = threading.Thread(target=_keep_renewed, args=(lease, done), daemon=True)
    thread.start()
    return lease, done, thread


def test_a_failed_renewal_is_retried_and_the_lease_stays_held():
    client = FakeLeaseClient(ServiceRequestError("connection reset"), None, None)
    lease, done, thread = renewing(client)
    time.sleep(0.45)
    lease.check()  # still held: the retry renewed it
    done.set()
    thread.join()
    assert client.renewals >= 3


def test_another_holder_means_the_lease_is_lost_and_writes_stop():
    lease, done, thread = renewing(FakeLeaseClient(conflict()))
    thread.join(timeout=2)
    assert not thread.is_alive()
    with guarded(lease.check), pytest.raises(LockLost, match="another instance"):
        before_write()
    done.set()


def test_renewals_failing_until_the_lease_runs_out_lose_it():
    failures = [ServiceRequestError("storage down")] * 50
    lease, done, thread = renewing(FakeLeaseClient(*failures))
    thread.join(timeout=3)
    assert not thread.is_alive()
    with pytest.raises(LockLost):
        lease.check()
    done.set()


def test_writes_stop_once_too_little_of_the_lease_is_left_even_before_a_renewal_fails():
    now = [100.0]
    lease = Lease(FakeLeaseClient(), 60, started=now[0], clock=lambda: now[0])
    lease.check()
    now[0] += 41  # less than a third of the lease left: the next write could outlive it
    with guarded(lease.check), pytest.raises(LockLost, match="could not be renewed"):
        before_write()
    before_write()  # outside the lock nothing is checked
