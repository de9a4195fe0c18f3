"""Issue #13, case 13: no time is ever read in the host's local time zone. Every datetime the app parses or
computes with, under a host at UTC+14 (the zone furthest from UTC, where a naive time read as local moves by 14 h).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from shared import clock
from shared.alerts import make_alert
from shared.quarters import custom_model_expiry, quarter_end
from shared.reconcile import days_left
from shared.speech import parse_time, retry_after_seconds
from tests.test_reconcile import model

PLUS_14 = timezone(timedelta(hours=14))


@pytest.fixture
def host_at_plus_14():
    """The process's local time zone at UTC+14 (POSIX spells it Etc/GMT-14), restored afterwards."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Etc/GMT-14"
    time.tzset()
    assert time.localtime(0).tm_hour == 14
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()
    clock.use_clock(None)


def test_a_service_time_without_an_offset_is_utc(host_at_plus_14):
    assert parse_time("2026-03-01T06:00:00") == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    assert parse_time("2026-03-01T06:00:00+02:00") == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


def test_the_quarter_rule_reads_a_naive_creation_time_as_utc(host_at_plus_14):
    """Jan 16 05:00 UTC is in the quarter ending Apr 15; read as local time at +14 it was Jan 15, a quarter earlier."""
    naive = datetime(2026, 1, 16, 5, 0)
    assert quarter_end(naive) == datetime(2026, 4, 15, tzinfo=UTC)
    assert custom_model_expiry(naive) == custom_model_expiry(naive.replace(tzinfo=UTC))


def test_an_alerts_time_is_utc_even_from_a_naive_clock(host_at_plus_14):
    alert = make_alert("model-failed", resource="r", locale="en-US", message="m", at=datetime(2026, 3, 1, 6, 0))
    assert alert.at == "2026-03-01T06:00:00Z"


def test_the_apps_clock_is_aware_utc_whatever_the_clock_in_use_returns(host_at_plus_14):
    clock.use_clock(lambda: datetime(2026, 3, 1, 6, 0))
    assert clock.now() == datetime(2026, 3, 1, 6, 0, tzinfo=UTC) and clock.now().tzinfo is UTC
    clock.use_clock(lambda: datetime(2026, 3, 1, 20, 0, tzinfo=PLUS_14))
    assert clock.now() == datetime(2026, 3, 1, 6, 0, tzinfo=UTC) and clock.now().tzinfo is UTC
    clock.use_clock(None)
    assert clock.now().tzinfo is UTC


def test_days_left_counts_utc_calendar_days_whatever_zone_now_is_given_in(host_at_plus_14):
    """A model with 6 hours left at 18:00 UTC is not expired; at +14 it is already the next day locally."""
    m = model("m1", expires=datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    now = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert days_left(m, now) == days_left(m, now.astimezone(PLUS_14)) == 1
    assert days_left(m, now.replace(tzinfo=None)) == 1


def test_an_http_date_retry_after_is_gmt(host_at_plus_14):
    now = datetime(2026, 3, 1, 6, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds({"Retry-After": "Sun, 01 Mar 2026 06:00:30 GMT"}, now=lambda: now) == 30


def test_the_sas_window_is_written_in_utc_whatever_zone_now_is_given_in(host_at_plus_14):
    from azure.storage.blob import BlobClient

    from shared.storage import SAS_START_SKEW, content_sas_url

    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={key};BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
    )
    blob = BlobClient.from_connection_string(conn, "training", "en-US/language/a.zip")
    now = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    expected = {"st": (now - SAS_START_SKEW).strftime("%Y-%m-%dT%H:%M:%SZ"), "se": "2026-03-01T08:00:00Z"}
    for given in (now, now.astimezone(PLUS_14), now.replace(tzinfo=None)):
        query = parse_qs(urlsplit(content_sas_url(blob, 2, now=given)).query)
        assert {name: query[name][0] for name in ("st", "se")} == expected
