"""The Speech request budget (shared/budget.py): no window ever holds more than the limit, a saturating background
pass leaves foreground work its share, retries are counted, and the client and the timers use it."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from local.speech_emulator import SpeechEmulator
from shared import context
from shared.budget import (
    BACKGROUND,
    FOREGROUND,
    RequestBudget,
    budget_for,
    current_priority,
    speech_priority,
)
from shared.speech import SpeechClient


class FakeTime:
    """A clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Recorded(deque):
    """Stands in for the budget's deque of admissions, keeping every admission time."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, moment: float) -> None:
        self.times.append(moment)
        super().append(moment)


def most_in_any_window(times: list[float], window: float) -> int:
    times, most, first = sorted(times), 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_a_burst_never_exceeds_the_limit_in_any_window():
    fake = FakeTime()
    budget = RequestBudget(100, 10.0, margin=0.5, clock=fake.clock, sleep=fake.sleep)
    budget._sent = recorded = Recorded()
    for i in range(1000):
        budget.acquire(BACKGROUND if i % 3 else FOREGROUND)
    assert len(recorded.times) == 1000
    assert most_in_any_window(recorded.times, 10.0) == 100  # full, never over
    assert most_in_any_window(recorded.times, 10.5) == 100  # the margin too
    assert fake.now - 1000.0 >= 9 * 10.5  # ten windows' worth took nine full spans of waiting at least


def test_threads_sharing_a_budget_never_exceed_it():
    budget = RequestBudget(20, 0.1, margin=0.02)
    budget._sent = recorded = Recorded()

    def burst() -> None:
        for i in range(15):
            budget.acquire(BACKGROUND if i % 2 else FOREGROUND)

    threads = [threading.Thread(target=burst) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recorded.times) == 90
    assert most_in_any_window(recorded.times, 0.12) <= 20


def test_foreground_requests_never_wait_while_a_background_pass_saturates_its_share():
    fake = FakeTime()
    budget = RequestBudget(100, 10.0, background_share=0.8, margin=0.5, clock=fake.clock, sleep=fake.sleep)
    budget._background = background = Recorded()
    ingest_waits, next_ingest = [], fake.now
    for _ in range(800):  # a pass listing as fast as it is let, for a minute and a half
        budget.acquire(BACKGROUND)
        while fake.now >= next_ingest:  # meanwhile ingest requests, 1.5 a second: within the 20 per window kept
            ingest_waits.append(budget.acquire(FOREGROUND))
            next_ingest += 1 / 1.5
    assert len(ingest_waits) > 120 and set(ingest_waits) == {0.0}
    assert budget.usage[FOREGROUND].waits == 0
    assert budget.usage[BACKGROUND].waits > 0  # the pass was held to its share ...
    assert most_in_any_window(background.times, 10.5) == 80  # ... of 80 in any window, never more


def test_the_priority_follows_the_block_and_new_threads_start_in_the_foreground():
    assert current_priority() == FOREGROUND
    seen = []
    with speech_priority(BACKGROUND):
        seen.append(current_priority())
        thread = threading.Thread(target=lambda: seen.append(current_priority()))
        thread.start()
        thread.join()
        with speech_priority(FOREGROUND):
            seen.append(current_priority())
        seen.append(current_priority())
    assert seen == [BACKGROUND, FOREGROUND, FOREGROUND, BACKGROUND] and current_priority() == FOREGROUND
    with pytest.raises(ValueError):
        with speech_priority("urgent"):
            pass
    with pytest.raises(ValueError):
        RequestBudget(0)


def test_one_budget_per_endpoint_shared_by_every_client():
    first = SpeechClient("https://a.example/", key="k")
    again = SpeechClient("https://a.example", key="k")
    other = SpeechClient("https://b.example", key="k")
    assert first.budget is again.budget is budget_for("https://a.example/speechtotext")
    assert other.budget is not first.budget
    assert SpeechClient("https://a.example", key="k", rate_limit=None).budget is None
    own = RequestBudget()
    assert SpeechClient("https://a.example", key="k", budget=own).budget is own


def test_retries_take_slots_from_the_budget_too(emulator):
    fake = FakeTime()
    budget = RequestBudget(100, 10.0, clock=fake.clock, sleep=fake.sleep)
    client = SpeechClient(emulator.url, key=emulator.key, sleep=fake.sleep, budget=budget)
    dataset = client.create_dataset(display_name="d", locale="en-US", kind="Language")
    emulator.inject(status=429, count=2, retry_after=1, method="GET")
    assert client.get_dataset(dataset.id).id == dataset.id
    assert budget.usage[FOREGROUND].requests == 4 == client.calls  # the create, then three attempts
    assert budget.in_window() == (4, 0)


def test_a_pass_and_ingest_requests_through_the_client_stay_under_an_enforced_limit():
    """Real time, small numbers: the emulator enforces 20 requests per second; a background listing of 24 pages
    runs at its share while foreground requests keep theirs; the emulator never has to answer 429."""
    with SpeechEmulator(page_size=1, rate_limit=(20, 1.0)) as emulator:
        ids = emulator.seed(
            "datasets", [{"displayName": f"d{i}", "locale": "en-US", "kind": "Language"} for i in range(24)]
        )
        budget = RequestBudget(20, 1.0, background_share=0.5, margin=0.1)
        client = SpeechClient(emulator.url, key=emulator.key, budget=budget, timeout=(2, 5))
        listed: list[str] = []

        def background_pass() -> None:
            with speech_priority(BACKGROUND):
                listed.extend(d.id for d in client.list_datasets())

        pass_thread = threading.Thread(target=background_pass)
        pass_thread.start()
        fetched = []
        while pass_thread.is_alive() and len(fetched) < 8:
            fetched.append(client.get_dataset(ids[len(fetched)]).id)
            threading.Event().wait(0.2)  # 5 a second: within the 10 per window kept for them
        pass_thread.join()
        assert sorted(listed) == sorted(ids) and fetched == ids[: len(fetched)] and len(fetched) >= 6
        assert emulator.throttled == 0
        assert budget.usage[BACKGROUND].waits > 0  # the pass was held back ...
        assert budget.usage[FOREGROUND].waited == 0  # ... and the foreground requests never were


def test_a_reconcile_pass_is_background_work(runtime, container, emulator, app_env, monkeypatch):
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None, "budget": RequestBudget()})
    context.reset()
    usage = context.speech(context.settings()).budget.usage
    assert runtime.fire_timer("reconcile").ok and runtime.fire_timer("expiry").ok
    assert usage[BACKGROUND].requests >= 8 and usage[FOREGROUND].requests == 0
