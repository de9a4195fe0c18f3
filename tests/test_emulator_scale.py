"""The emulator at scale: the `filter` parameter (local/odata.py), paging whose cost does not depend on the offset
(local/emulator_store.py), bulk seeding and the rate limit. Over HTTP, every answer checked against the spec."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
import requests

from local import odata
from local.emulator_store import Collection, Pager

# the emulator fixtures of the emulator's own tests: spec-checked, frozen at START
from tests.test_emulator import START, api, check, contract, created, emulator, entity_id, error_of, make  # noqa: F401

DATASET_FILTER = {
    "displayName": odata.STRING,
    "description": odata.STRING,
    "status": odata.STRING,
    "locale": odata.STRING,
    "kind": odata.STRING,
    "createdDateTime": odata.DATETIME,
}


# -- the filter language -------------------------------------------------------------------------------------------


def test_a_filter_parses_into_comparisons_junctions_and_negations():
    node = odata.parse(
        "displayName eq 'it''s' and (status eq 'Running' or not kind ne 'Language')"
        " and createdDateTime ge 2026-11-22T09:00:00Z",
        DATASET_FILTER,
    )
    assert node == odata.Junction(
        "and",
        (
            odata.Comparison("displayName", "eq", "it's"),
            odata.Junction(
                "or",
                (
                    odata.Comparison("status", "eq", "Running"),
                    odata.Not(odata.Comparison("kind", "ne", "Language")),
                ),
            ),
            odata.Comparison("createdDateTime", "ge", datetime(2026, 11, 22, 9, tzinfo=UTC)),
        ),
    )
    assert odata.equalities(node) == [("displayName", "it's")]
    assert odata.parse("description eq ''''", DATASET_FILTER) == odata.Comparison("description", "eq", "'")
    assert odata.parse("createdDateTime lt 2020-01-01", DATASET_FILTER).value == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("displayName eq 'open", "unterminated string"),
        ("displayName eq 'a' and", "ends too early"),
        ("displayName = 'a'", "unexpected '='"),
        ("displayName eq a", "expected a literal"),
        ("customProperties eq 'a'", "unsupported property 'customProperties'"),
        ("webUrl eq 'a'", "unsupported property"),
        ("displayName gt 'a'", "date-time properties only"),
        ("kind eq 2024-01-01", "string literal in quotes"),
        ("createdDateTime gt 'yesterday'", "not an ISO 8601"),
        ("(status eq 'Running'", "ends too early"),
        ("status eq 'Running')", "unexpected ')'"),
        ("status EQ 'Running'", "expected one of eq"),
        ("status eq 'a' xor status eq 'b'", "unexpected 'xor'"),
    ],
)
def test_what_a_filter_cannot_say_is_an_error_that_says_why(text, why):
    with pytest.raises(odata.FilterError, match=re.escape(why)):
        odata.parse(text, DATASET_FILTER)


def test_a_compiled_filter_decides_on_values_with_missing_ones_only_unequal():
    items = [
        {"displayName": "a", "status": "Running", "createdDateTime": datetime(2026, 1, 1, 0, 0, 0, 900, tzinfo=UTC)},
        {"displayName": "b", "status": "Succeeded", "createdDateTime": datetime(2026, 2, 1, tzinfo=UTC)},
        {"status": "Succeeded"},
    ]

    def select(text: str) -> list[int]:
        match = odata.compile_predicate(odata.parse(text, DATASET_FILTER), lambda item, name: item.get(name))
        return [i for i, item in enumerate(items) if match(item)]

    assert select("displayName eq 'a'") == [0]
    assert select("displayName ne 'a'") == [1, 2]
    assert select("status eq 'Succeeded' and not displayName eq 'b'") == [2]
    assert select("displayName eq 'a' or displayName eq 'b'") == [0, 1]
    assert select("createdDateTime le 2026-01-01T00:00:00Z") == [0]  # second precision, as the API shows it
    assert select("createdDateTime gt 2026-01-01") == [1]


# -- storage and paging, without HTTP ------------------------------------------------------------------------------


class Item:
    def __init__(self, seq: int, **fields: str) -> None:
        self.id, self.seq, self.fields = f"i{seq}", seq, fields


def test_a_collection_keeps_creation_order_and_its_indexes_through_changes():
    items = Collection(Item(seq, displayName=f"n{seq % 3}", locale="en-US") for seq in range(9))
    assert [i.seq for i in items.bucket("displayName", "n1")] == [1, 4, 7]
    del items["i4"]
    items["i4"] = Item(4, displayName="n2")  # the same id again: replaced, in creation order
    changed = items["i7"]
    changed.fields["displayName"] = "n0"
    items.reindex(changed)
    assert [i.seq for i in items.bucket("displayName", "n1")] == [1]
    assert [i.seq for i in items.bucket("displayName", "n0")] == [0, 3, 6, 7]
    assert [i.seq for i in items.bucket("locale", "en-US")] == [0, 1, 2, 3, 5, 6, 7, 8]
    assert list(items) == [f"i{seq}" for seq in range(9)] and len(items) == 9
    with pytest.raises(KeyError):
        items.bucket("status", "Running")


def test_pages_are_slices_newest_first_and_a_filtered_walk_resumes_where_the_last_page_stopped():
    items = [Item(seq) for seq in range(1000)]
    pager = Pager()
    assert [i.seq for i in pager.page(items, 990, 5)[0]] == [9, 8, 7, 6, 5]
    assert pager.page(items, 995, 10) == (items[:5][::-1], False)
    assert pager.page(items, 1000, 10) == ([], False)

    looked_at = []

    def odd(item: Item) -> bool:
        looked_at.append(item.seq)
        return item.seq % 2 == 1

    seen, skip, more = [], 0, True
    while more:
        page, more = pager.page(items, skip, 30, odd, listing="odd")
        seen += [i.seq for i in page]
        skip += 30
    assert seen == list(range(999, 0, -2))
    assert len(looked_at) <= len(items) + 17  # each page starts where the previous one stopped: O(n) in all

    looked_at.clear()
    page, _ = pager.page(items, 40, 3, odd, listing="a skip no page led to")
    assert [i.seq for i in page] == [919, 917, 915]  # walked from the newest


# -- over HTTP -----------------------------------------------------------------------------------------------------


def _datasets(emulator, names: list[str], **extra) -> list[str]:
    items = [{"displayName": name, "locale": "en-US", "kind": "Language", **extra} for name in names]
    return emulator.seed("datasets", items)


def _all(emulator, params: dict) -> tuple[list[str], int]:
    """Every id of a listing, following nextLinks, and the number of pages."""
    ids, url, pages = [], "datasets", 0
    while url:
        resp = api(emulator, "GET", url, params=params if url == "datasets" else {})
        assert resp.status_code == 200, resp.text
        ids += [entity_id(d) for d in resp.json()["values"]]
        url = resp.json().get("@nextLink")
        pages += 1
    return ids, pages


def test_the_filter_selects_on_every_documented_property_with_quotes_escaped(make):
    emulator = make()
    quoted = _datasets(emulator, ["O'Brien's calls"], description="Created from training/it's.zip (ETag 0x1).")
    plain = _datasets(emulator, ["plain"], description="other")
    emulator.advance(3600)
    later = emulator.seed("datasets", [{"displayName": "later", "locale": "de-DE", "kind": "Acoustic"}])

    def ids(expression: str) -> list[str]:
        return _all(emulator, {"filter": expression})[0]

    assert ids("displayName eq 'O''Brien''s calls'") == quoted
    assert ids("description eq 'Created from training/it''s.zip (ETag 0x1).'") == quoted
    assert ids("description eq 'Created from training/it''s.zip (ETag 0x2).'") == []
    assert ids("displayName ne 'plain' and locale eq 'en-US'") == quoted
    assert ids("kind eq 'Acoustic' or displayName eq 'plain'") == later + plain
    assert ids("not (locale eq 'en-US')") == later
    assert ids("status eq 'Succeeded' and kind eq 'Language'") == plain + quoted
    assert ids("createdDateTime gt 2026-11-22T09:30:00Z") == later
    assert ids("lastActionDateTime le 2026-11-22T09:00:00Z") == plain + quoted
    assert ids("  ") == later + plain + quoted  # an empty filter is no filter


@pytest.mark.parametrize(
    "expression",
    ["displayName eq 'open", "sourcePath eq 'x'", "displayName gt 'a'", "status eq Running", "kind eq 'a' nand"],
)
def test_a_filter_the_emulator_cannot_parse_is_a_400_in_the_services_error_shape(emulator, expression):
    resp = api(emulator, "GET", "datasets", params={"filter": expression})
    assert error_of(resp, 400) == ("InvalidArgument", "UnsupportedFilter")
    assert "filter" in resp.json()["message"]


def test_models_and_endpoints_take_the_filter_too_and_not_the_kind(emulator):
    assert api(emulator, "GET", "models", params={"filter": "locale eq 'en-US'"}).json() == {"values": []}
    base = api(emulator, "GET", "models/base", params={"filter": "locale eq 'de-DE' and status eq 'Succeeded'"})
    assert {m["locale"] for m in base.json()["values"]} == {"de-DE"} and len(base.json()["values"]) == 4
    assert error_of(api(emulator, "GET", "models", params={"filter": "kind eq 'Language'"}), 400)[1] == (
        "UnsupportedFilter"
    )
    assert api(emulator, "GET", "endpoints", params={"filter": "displayName eq 'x'"}).status_code == 200


def test_a_patched_display_name_is_found_by_its_new_name_only(emulator):
    [made] = _datasets(emulator, ["before"])
    assert api(emulator, "PATCH", f"datasets/{made}", json={"displayName": "after"}).status_code == 200
    assert _all(emulator, {"filter": "displayName eq 'after'"})[0] == [made]
    assert _all(emulator, {"filter": "displayName eq 'before'"})[0] == []


def test_paging_at_any_offset_renders_only_the_page_and_gives_the_right_entities(make, monkeypatch):
    emulator = make(page_size=25)
    ids = _datasets(emulator, [f"d{i}" for i in range(1000)])
    newest_first = ids[::-1]
    rendered = []
    render = emulator._render
    monkeypatch.setattr(emulator, "_render", lambda entity: rendered.append(entity.id) or render(entity))

    listed, pages = _all(emulator, {})
    assert listed == newest_first and pages == 40
    assert len(rendered) == 1000  # each entity rendered once over the whole listing

    for skip in (0, 480, 975, 990):
        rendered.clear()
        page = api(emulator, "GET", "datasets", params={"skip": skip, "top": 25}).json()
        assert [entity_id(d) for d in page["values"]] == newest_first[skip : skip + 25]
        assert ("@nextLink" in page) == (skip + 25 < 1000)
        assert len(rendered) == len(page["values"])
    assert api(emulator, "GET", "datasets", params={"skip": 5000}).json() == {"values": []}


def test_following_a_filtered_listing_gives_each_match_once_newest_first(make):
    emulator = make(page_size=10)
    ids = _datasets(emulator, [f"d{i}" for i in range(200)])
    emulator.seed("datasets", [{"displayName": "d7", "locale": "de-DE", "kind": "Acoustic"}] * 3)
    listed, _ = _all(emulator, {"filter": "kind eq 'Language' and status eq 'Succeeded'"})
    assert listed == ids[::-1]
    de = _all(emulator, {"filter": "locale eq 'de-DE'"})[0]
    assert len(de) == 3
    d7 = _all(emulator, {"filter": "displayName eq 'd7'"})[0]
    assert d7 == de + [ids[7]]


def test_seeded_entities_are_finished_and_look_like_created_ones(emulator, check):
    [data] = emulator.seed(
        "datasets",
        [{"displayName": "d", "locale": "en-US", "kind": "Language", "customProperties": {"managedBy": "x"}}],
    )
    base = next(m for m in emulator.base_models.values() if m["locale"] == "en-US")
    data_uri = api(emulator, "GET", f"datasets/{data}").json()["self"]
    model_body = {
        "displayName": "m",
        "locale": "en-US",
        "baseModel": {"self": base["self"]},
        "datasets": [{"self": data_uri}],
        "createdDateTime": "2026-01-01T00:00:00Z",
    }
    [model] = emulator.seed("models", [model_body])
    shown = api(emulator, "GET", f"models/{model}").json()
    assert shown["status"] == "Succeeded" and shown["createdDateTime"] == "2026-01-01T00:00:00Z"
    assert shown["properties"]["deprecationDates"]["transcriptionDateTime"] == "2028-01-15T00:00:00Z"
    endpoint = created(emulator, "endpoints", {"displayName": "e", "locale": "en-US", "model": {"self": shown["self"]}})
    assert endpoint["model"]["self"] == shown["self"]
    with pytest.raises(ValueError):
        emulator.seed("webhooks", [{"displayName": "w", "locale": "en-US"}])
    assert len(api(emulator, "GET", "datasets").json()["values"]) == 1
    over_http = requests.post(
        f"{emulator.url}/_emulator/seed",
        json={"collection": "datasets", "items": [{"displayName": "h", "locale": "en-US", "kind": "Language"}]},
        headers={"Ocp-Apim-Subscription-Key": emulator.key},
        timeout=5,
    )
    assert over_http.status_code == 201 and len(over_http.json()["ids"]) == 1


def test_the_rate_limit_answers_429_with_retry_after_beyond_the_window(make):
    emulator = make(rate_limit=(5, 1.0))
    started = time.monotonic()
    statuses = [api(emulator, "GET", "datasets").status_code for _ in range(5)]
    refused = api(emulator, "GET", "models")
    assert statuses == [200] * 5
    assert error_of(refused, 429)[0] == "TooManyRequests"
    assert refused.headers["Retry-After"] == "1"
    control = api(emulator, "GET", f"{emulator.url}/_emulator/state")  # control calls are not API calls
    assert control.json()["throttled"] == 1
    time.sleep(max(0.0, started + 1.05 - time.monotonic()))
    assert api(emulator, "GET", "datasets").status_code == 200  # the window slid on
    assert [r["status"] for r in emulator.requests].count(429) == 1
    emulator.reset()
    assert emulator.throttled == 0


def test_without_a_rate_limit_nothing_is_throttled(emulator):
    assert all(api(emulator, "GET", "datasets").status_code == 200 for _ in range(30))
    assert emulator.throttled == 0


def test_an_exact_description_filter_is_answered_by_the_index_without_a_scan(emulator, monkeypatch):
    """The ingest's lookup (`description eq '<exact>'`) costs the same whatever the number of datasets."""
    import local.speech_emulator as module

    ids = _datasets(emulator, [f"d{i}" for i in range(2000)], description="other")
    [wanted] = _datasets(emulator, ["wanted"], description="Created from training/a.zip (ETag 0x1).")
    evaluated = []
    value_of = module._filter_value
    monkeypatch.setattr(module, "_filter_value", lambda *args: evaluated.append(args[1]) or value_of(*args))

    assert _all(emulator, {"filter": "description eq 'Created from training/a.zip (ETag 0x1).'"})[0] == [wanted]
    assert evaluated == []  # the index answered it alone
    both = "description eq 'Created from training/a.zip (ETag 0x1).' and status eq 'Succeeded'"
    assert _all(emulator, {"filter": both})[0] == [wanted]
    assert len(evaluated) <= 2  # one candidate checked
    evaluated.clear()
    assert len(_all(emulator, {"filter": "status eq 'Succeeded'"})[0]) == len(ids) + 1
    assert len(evaluated) >= len(ids)  # a filter no index answers is checked entity by entity
