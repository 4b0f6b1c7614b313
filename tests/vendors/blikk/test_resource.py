"""BlikkResource over real HTTP against the strict sandbox: token handling, paging, errors."""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from timesheet_assets.http import SystemClock, VendorAuthError, VendorHTTPError
from timesheet_assets.ingest.compact import expand_record
from timesheet_assets.vendors.blikk.resource import TIME_REPORTS_PATH


def _query(call) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(call.query).items()}


def test_one_token_with_basic_auth_reused_for_every_page(blikk):
    sandbox = blikk(time_records=300)
    resource = sandbox.resource()
    try:
        listing = resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()
    assert len(listing.records) == 300 and listing.complete and listing.walks == 1

    token_calls = sandbox.stats.calls("/v1/Auth/Token")
    assert len(token_calls) == 1 and token_calls[0].method == "POST"
    expected_basic = base64.b64encode(b"sandbox-blikk-app:sandbox-blikk-secret").decode()
    assert token_calls[0].headers["authorization"] == f"Basic {expected_basic}"

    pages = sandbox.stats.calls(TIME_REPORTS_PATH)
    bearers = {call.headers["authorization"] for call in pages}
    assert len(bearers) == 1 and next(iter(bearers)).startswith("Bearer ")
    queries = [_query(call) for call in pages]
    assert sorted(q["page"] for q in queries) == ["1", "2", "3"]
    for query in queries:
        assert query["pageSize"] == "100"
        assert query["filter.from"] == sandbox.config.first_date.isoformat()
        assert query["filter.to"] == sandbox.config.anchor_date.isoformat()
        assert (query["sortBy"], query["sortOrder"]) == ("createdDate", "ascending")
    assert sandbox.stats.violations == 0


def test_token_renewed_shortly_before_expires_without_a_401(blikk):
    sandbox = blikk(time_records=300)
    sandbox.data.token_lifetime_seconds = 2.0
    resource = sandbox.resource(page_size=25)  # 12 pages: ~3 s at the documented rate
    try:
        listing = resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()
    assert len(listing.records) == 300
    # A 2-second token (``expires`` has whole seconds) renewed ahead of time across ~3 s.
    assert 2 <= sandbox.stats.count("/v1/Auth/Token") <= 4
    assert 401 not in sandbox.statuses()
    assert resource.metrics.snapshot().reauthentications == 0


def test_invalid_request_quotes_model_state(blikk):
    sandbox = blikk(time_records=10)
    resource = sandbox.resource()
    with pytest.raises(VendorHTTPError) as caught:
        resource.fetch_list(TIME_REPORTS_PATH, {"sortBy": "colour", "filter.from": "yesterday"})
    resource.close()
    assert caught.value.status == 400 and caught.value.attempts == 1
    assert str(caught.value) == (
        "Blikk GET /v1/Core/TimeReports failed with HTTP 400 after 1 attempt: The request is "
        "invalid. — sortBy: The value 'colour' is not valid for SortBy.; filter.from: The value "
        "'yesterday' is not valid for From."
    )


def test_missing_permission_and_ip_restriction_quote_the_vendor(blikk):
    sandbox = blikk(time_records=10)
    sandbox.data.denied_permissions = {"Timereport_Read"}
    resource = sandbox.resource()
    with pytest.raises(VendorAuthError) as denied:
        resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    assert denied.value.status == 403
    assert "HTTP 403" in str(denied.value)
    assert "permissions required: Timereport_Read" in str(denied.value)

    sandbox.data.denied_permissions = set()
    sandbox.data.ip_allowed = False
    with pytest.raises(VendorAuthError) as refused:
        resource.fetch_projects()
    resource.close()
    assert refused.value.status == 403
    assert 'Your IP-address "127.0.0.1" is not allowed' in str(refused.value)


def test_server_error_is_not_retried_and_names_the_request_id(blikk):
    sandbox = blikk(time_records=10)
    sandbox.knobs.update(script=[500], path_contains="/v1/Core/Projects")
    resource = sandbox.resource()
    with pytest.raises(VendorHTTPError) as caught:
        resource.fetch_projects()
    resource.close()
    message = str(caught.value)
    assert message.startswith("Blikk GET /v1/Core/Projects failed with HTTP 500 after 1 attempt: ")
    assert "An unexpected error has occurred. — request id r-" in message
    assert sandbox.stats.count("/v1/Core/Projects") == 1


# -- the list walk when the server's list changes underneath it --------------------------------
def _after_page(sandbox, page_number, action, *, repeat=False):
    def hook(path, page, body):
        if path == TIME_REPORTS_PATH and page == page_number:
            if not repeat:
                sandbox.data.page_hooks.remove(hook)
            action()

    sandbox.data.page_hooks.append(hook)


def _walk(sandbox, **overrides):
    resource = sandbox.resource(**overrides)
    try:
        return resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()


def test_records_deleted_mid_walk_trigger_one_clean_reread(blikk):
    sandbox = blikk(time_records=300)
    first_page_ids = [r["id"] for r in sorted(sandbox.data.time_reports, key=lambda r: r["createdDate"])[:10]]
    _after_page(sandbox, 1, lambda: sandbox.data.delete_time_reports(first_page_ids))
    listing = _walk(sandbox)
    ids = [r["id"] for r in listing.records]
    assert len(ids) == len(set(ids)) == 290
    assert set(ids) == {r["id"] for r in sandbox.data.time_reports}
    assert listing.walks == 2 and listing.changed_mid_walk and listing.complete
    assert sandbox.stats.count(TIME_REPORTS_PATH) == 6


def test_record_inserted_ahead_mid_walk_is_deduplicated_and_found(blikk):
    sandbox = blikk(time_records=300)
    day = sandbox.config.first_date
    oldest = min(r["createdDate"] for r in sandbox.data.time_reports)
    # A back-dated creation sorts onto page 1 and pushes every later record one place on.
    _after_page(sandbox, 1, lambda: sandbox.data.add_time_report(day, createdDate=oldest))
    listing = _walk(sandbox)
    ids = [r["id"] for r in listing.records]
    assert len(ids) == len(set(ids)) == 301
    assert listing.duplicates_skipped == 1
    assert listing.walks == 2 and listing.complete


def test_a_list_that_keeps_growing_cannot_keep_the_walk_going(blikk):
    sandbox = blikk(time_records=60)
    day = sandbox.config.first_date + timedelta(days=1)

    def grow():
        for _ in range(40):
            sandbox.data.add_time_report(day)

    for page in range(1, 50):
        _after_page(sandbox, page, grow, repeat=True)
    listing = _walk(sandbox, page_size=30)
    ids = [r["id"] for r in listing.records]
    assert len(ids) == len(set(ids))
    assert not listing.complete and listing.page_cap_hit and listing.walks == 1
    # 60 records at 30 a page is 2 pages; the walk follows growth to twice that, then stops.
    assert listing.page_requests == sandbox.stats.count(TIME_REPORTS_PATH) == 4
    assert len(ids) == 4 * 30


class _ClockAheadBy(SystemClock):
    """This machine's wall clock running ahead of the API's (monotonic time untouched)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self):
        return super().now() + self.offset


def test_token_expiry_already_past_by_our_clock_means_reuse_until_rejected(blikk, caplog):
    sandbox = blikk(time_records=300)
    resource = sandbox.resource()
    resource._client = resource.open_client(clock=_ClockAheadBy(timedelta(hours=3)))
    try:
        listing = resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()
    assert len(listing.records) == 300
    assert sandbox.stats.count("/v1/Auth/Token") == 1
    assert "already past by this machine's clock" in caplog.text


def _two_runs_at_once(sandbox):
    from concurrent.futures import ThreadPoolExecutor

    resources = [sandbox.resource(), sandbox.resource()]
    window = (sandbox.config.first_date, sandbox.config.anchor_date)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            listings = list(pool.map(lambda r: r.fetch_time_reports(*window), resources))
    finally:
        for resource in resources:
            resource.close()
    return listings


def test_the_limit_is_per_access_token_unless_the_sandbox_is_told_otherwise(blikk):
    sandbox = blikk(time_records=300)
    listings = _two_runs_at_once(sandbox)
    assert [len(listing.records) for listing in listings] == [300, 300]
    assert sandbox.stats.count("/v1/Auth/Token") == 2
    # Two tokens, ~7.7 requests/s together, each token under four a second: as documented.
    assert sandbox.stats.rate_exceeded == 0

    sandbox.stats.reset()
    sandbox.data.rate_limit_scope = "application"
    listings = _two_runs_at_once(sandbox)
    # Both finish (the client waits out the 429s), but together they overran one budget.
    assert [len(listing.records) for listing in listings] == [300, 300]
    assert sandbox.stats.rate_exceeded > 0
    assert 429 in sandbox.statuses(TIME_REPORTS_PATH)


def test_a_compact_read_holds_each_report_as_its_text_and_walks_the_same(blikk):
    """A long window read keeps every report as its JSON text, not a parsed dict, through the
    same walk: the same reports (a moved list re-read included), deduplicated the same way."""
    sandbox = blikk(time_records=300)
    day = sandbox.config.first_date
    oldest = min(r["createdDate"] for r in sandbox.data.time_reports)
    _after_page(sandbox, 1, lambda: sandbox.data.add_time_report(day, createdDate=oldest))
    resource = sandbox.resource()
    try:
        listing = resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date, compact=True)
        plain = resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()
    assert all(type(item) is str for item in listing.records)
    assert [expand_record(item) for item in listing.records] == plain.records
    assert len(plain.records) == 301 and listing.duplicates_skipped == 1 and listing.walks == 2
    taken = listing.take_records()
    assert len(taken) == listing.records_read == 301 and listing.records == []
