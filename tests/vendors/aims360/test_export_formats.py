"""The export is read as the ``outputFormat`` its job was asked for, over real HTTP.

* A 200 whose body is not a file of that format ("Access Denied" as text, an HTML page, an
  empty body) fails the run and leaves the previous table as it was.
* Doc-conformant variants the Aqua page allows — Excel as a legacy .xls workbook, files
  served with any content type — load the same rows as the JSON export.
* Publishlinks on AIMS360's regional API hosts get the token when the API host is one of
  them (the Aqua page's example link is on api.aims360.rest).
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.http import MalformedBody, VendorRejected
from timesheet_assets.vendors.aims360.assets import build_view_asset
from timesheet_assets.vendors.aims360.publishlinks import REGIONAL_API_HOSTS, trusted_publishlink_hosts
from timesheet_assets.vendors.aims360.resource import PublishlinkHostRefused, ViewSpec, parse_export
from timesheet_assets.vendors.aims360.view_asset import Aims360ExportConfig, download_run_config

from .conftest import OP, OPEN_ORDERS, ROWS, make_resource, make_settings

KEY = ["raw", "aims360", "orders_open_orders"]
TABLE = "aims360.orders_open_orders"
VIEW = "Orders/Open Orders"
ORDERS = ViewSpec("Orders", "Open Orders")
FAST_POLLS = {"ops": {OP: {"config": {"first_poll_seconds": 0.01}}}}
MASKED_LINK = "AIMS360 GET /reports/v1.0/publishlink/***"
FILE_TYPES = {
    "JSON": "application/json; charset=utf-8",
    "CSV": "text/csv; charset=utf-8",
    "Excel": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
HTML_PAGE = (
    b"<!DOCTYPE html>\r\n<html><head><title>Access Denied</title></head>\r\n<body><h1>Access Denied</h1>"
    b"<p>You don't have permission to access this resource.</p></body></html>\r\n"
)


def run(res, warehouse, instance, *, run_config=FAST_POLLS, ok=True, retry_policy=None):
    settings = make_settings()
    assets = [build_view_asset(v, settings, retry_policy=retry_policy) for v in settings.views]
    return materialize(assets, {"aims360": res}, warehouse, instance=instance, run_config=run_config, raise_on_error=ok)


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(_n=frame["record_key"].astype(int)).sort_values("_n").drop(columns="_n").reset_index(drop=True)


def failure_text(result) -> str:
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    texts, error = [], data.error
    while error is not None:
        texts.append(error.message)
        error = error.cause
    return "\n".join(texts)


def step_retries(result) -> int:
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


# -- a 200 that is not the requested file ------------------------------------------------------
@pytest.mark.parametrize("output_format", ["JSON", "CSV", "Excel"])
def test_a_200_that_is_not_the_requested_file_fails_the_run_and_keeps_the_table(
    aims, instance, warehouse, output_format
):
    res = make_resource(aims.url, output_format=output_format, max_attempts=3, backoff_cap_seconds=0.02)
    clean = run(res, warehouse, instance)
    meta = materialization_metadata(clean, KEY)
    assert (meta["output_format"], meta["rows"]) == (output_format, ROWS)
    before = ordered(read_table(warehouse, TABLE))
    assert before["order_no"].tolist() == [r["Order No"] for r in aims.state.view_rows(VIEW)]
    job = aims.state.job(meta["job_id"])
    # The run the sensor requests for a completed job: the download only.
    download_only = download_run_config(
        OPEN_ORDERS,
        Aims360ExportConfig(
            job_id=job.job_id, publish_link=job.publish_link, scope="Private", output_format=output_format
        ),
    )
    cases = {
        "plain_text": (
            b"Access Denied",
            "text/plain",
            0,
            f"publishlink answered text instead of the {output_format} export the job was asked for: Access Denied",
        ),
        "text_labelled_as_the_file": (
            b"Access Denied",
            FILE_TYPES[output_format],
            0,
            f"instead of the {output_format} export the job was asked for: Access Denied",
        ),
        "html_page": (
            HTML_PAGE,
            "text/html; charset=utf-8",
            0,
            f"publishlink answered an HTML page instead of the {output_format} export the job was "
            "asked for: Access Denied",
        ),
        # Perhaps the output is not written yet: retried, then an outage for the step retry.
        "empty_body": (
            b"",
            FILE_TYPES[output_format],
            1,
            f"failed with HTTP 200 after 3 attempts: publishlink answered an empty body where a "
            f"{output_format} file was expected",
        ),
    }
    for name, (body, media_type, retries, message) in cases.items():
        aims.state.publishlink_instead = (body, media_type)
        downloads = sum(1 for r in aims.sandbox.stats.calls() if "/publishlink/" in r.path)

        result = run(
            res,
            warehouse,
            instance,
            run_config=download_only,
            ok=False,
            retry_policy=dg.RetryPolicy(max_retries=1, delay=0),
        )

        text = failure_text(result)
        assert MASKED_LINK in text and message in text, (name, text)
        assert step_retries(result) == retries, name
        served = sum(1 for r in aims.sandbox.stats.calls() if "/publishlink/" in r.path) - downloads
        assert served == (1 if retries == 0 else 3 * 2), name  # no client retry for a message
        pd.testing.assert_frame_equal(ordered(read_table(warehouse, TABLE)), before, obj=name)
    aims.state.publishlink_instead = None
    assert run(res, warehouse, instance, run_config=download_only).success


@pytest.mark.parametrize(
    "body, output_format, content_type, error, message",
    [
        (b"Access Denied", "CSV", None, VendorRejected, "text instead of the CSV export"),
        (b"Access Denied\r\n", "CSV", "text/csv", VendorRejected, "text instead of the CSV export"),
        (
            b"Access Denied.\r\nYou are not authorised to read this link.\r\n",
            "CSV",
            "text/csv",
            VendorRejected,
            "Access Denied.",
        ),
        (b"Error: the export failed, please retry\r\n", "CSV", "text/csv", VendorRejected, "Error: the export failed"),
        (
            b'{"message": "Access Denied"}',
            "CSV",
            "text/csv",
            VendorRejected,
            "Access Denied (a JSON message came instead of the CSV export)",
        ),
        (b'{"message": "Access Denied"}', "Excel", None, VendorRejected, "Access Denied (a JSON message"),
        (b'{"error": {"code": 403, "message": "Access Denied"}}', "JSON", None, VendorRejected, "Access Denied"),
        (b'[{"Order No": "1"}]', "CSV", "application/json", VendorRejected, "JSON instead of the CSV export"),
        (
            b"Order No,Qty\r\n1,2\r\n",
            "JSON",
            "application/json",
            VendorRejected,
            "text instead of the JSON export the job was asked for: Order No,Qty",
        ),
        (b"Order No,Qty\r\n1,2\r\n", "Excel", "application/vnd.ms-excel", VendorRejected, "text instead of the Excel"),
        (b"PK\x03\x04...", "CSV", "text/csv", VendorRejected, "a zip file (an xlsx workbook?) instead of the CSV"),
        (b"<?xml version='1.0'?><Error>Denied</Error>", "JSON", None, VendorRejected, "an XML document instead"),
        (b"  \r\n", "CSV", "text/csv", MalformedBody, "empty body where a CSV file was expected"),
        (b"\xef\xbb\xbf", "JSON", None, MalformedBody, "empty body where a JSON file was expected"),
    ],
)
def test_bodies_that_are_not_the_requested_format_are_refused_with_what_they_are(
    body, output_format, content_type, error, message
):
    with pytest.raises(error, match=None) as info:
        parse_export(body, output_format, content_type)
    assert message in str(info.value)


def test_the_requested_format_decides_not_the_body_or_its_content_type():
    rows = [{"[Order No]": "1", "[Qty]": "2"}]
    # A CSV whose first header starts with "[" was once read as broken JSON.
    assert parse_export(b"[Order No],[Qty]\r\n1,2\r\n", "CSV", "application/octet-stream").records == rows
    # A CSV labelled as an Excel file (as Windows servers often label .csv downloads).
    assert parse_export(b"A,B\r\n1,2\r\n", "CSV", "application/vnd.ms-excel").records == [{"A": "1", "B": "2"}]
    # JSON labelled as text.
    assert parse_export(b'[{"A": 1}]', "JSON", "text/plain").records == [{"A": 1}]
    # A one-column view served as a CSV file with rows is a view, not a message.
    assert parse_export(b"Style\r\nST-1\r\nST-2\r\n", "CSV", "text/csv").records == [
        {"Style": "ST-1"},
        {"Style": "ST-2"},
    ]
    # A view with no rows is its header line.
    assert parse_export(b"Order No,Customer\r\n", "CSV", "text/csv").records == []
    assert parse_export(b"[]", "JSON", "application/json").records == []
    # Any case of the format name, as the setting allows.
    assert parse_export(b"A\r\n1\r\n", "csv", "text/csv").output_format == "CSV"
    with pytest.raises(ValueError, match="output format must be one of JSON, CSV, Excel"):
        parse_export(b"A\r\n1\r\n", "XML")


def test_legacy_xls_cells_read_as_the_xlsx_reader_gives_them():
    xlwt = pytest.importorskip("xlwt")
    import io
    from datetime import datetime

    book = xlwt.Workbook()
    sheet = book.add_sheet("Export")
    for column, header in enumerate(["Order No", "Qty", "Amount", "Rush", "Shipped", "Error", "Notes"]):
        sheet.write(0, column, header)
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    values = ["0000001", 12, 12.5, True, datetime(2024, 5, 1, 9, 30), None, None]
    for column, value in enumerate(values):
        if isinstance(value, datetime):
            sheet.write(1, column, value, date_style)
        elif value is not None:
            sheet.write(1, column, value)
    sheet.row(1).set_cell_error(5, "#DIV/0!")
    sheet.write(3, 0, "0000002")  # a blank row between is skipped
    out = io.BytesIO()
    book.save(out)

    export = parse_export(out.getvalue(), "Excel", "application/octet-stream")

    assert export.file_type == "xls" and export.output_format == "Excel"
    first, second = export.records
    assert first["Order No"] == "0000001" and first["Qty"] == 12 and isinstance(first["Qty"], int)
    assert first["Amount"] == 12.5 and first["Rush"] is True
    assert first["Shipped"] == "2024-05-01T09:30:00"
    assert first["Error"] == "#DIV/0!" and first["Notes"] is None
    assert second["Order No"] == "0000002" and second["Qty"] is None


# -- doc-conformant variants load the same rows ---------------------------------------------
def test_legacy_xls_and_files_under_other_content_types_give_the_json_frame(aims, instance, tmp_path: Path):
    variants = {
        "JSON": ("JSON", "xlsx", {}),
        "JSON_as_text": ("JSON", "xlsx", {"JSON": "text/plain"}),
        "CSV_as_excel_type": ("CSV", "xlsx", {"CSV": "application/vnd.ms-excel"}),
        "legacy_xls": ("Excel", "xls", {}),
        "legacy_xls_as_octet_stream": ("Excel", "xls", {"Excel": "application/octet-stream"}),
    }
    frames = {}
    for name, (output_format, excel_file, media_types) in variants.items():
        aims.state.excel_file, aims.state.media_types = excel_file, media_types
        result = run(make_resource(aims.url, output_format=output_format), str(tmp_path / f"{name}.duckdb"), instance)
        meta = materialization_metadata(result, KEY)
        assert (meta["output_format"], meta["rows"], meta["quarantined"]) == (output_format, ROWS, 0), name
        served = [r for r in aims.sandbox.stats.calls() if "/publishlink/" in r.path][-1]
        assert served.status == 200
        frames[name] = ordered(read_table(str(tmp_path / f"{name}.duckdb"), TABLE)).drop(
            columns=["payload", "ingested_at"]
        )
    assert materialization_metadata(result, KEY)["file_type"] == "xls"
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frames["JSON"], frame, obj=name)
    served = aims.state.view_rows(VIEW)
    assert frames["JSON"]["total_qty"].tolist() == [r["Total Qty"] for r in served]
    assert frames["JSON"]["rush"].tolist() == [r["Rush"] for r in served]


def test_sensor_run_reads_the_format_the_job_was_created_with(aims, harness, instance, warehouse):
    """A job keeps its outputFormat: when the setting changes between the job's creation and
    the run the sensor requests, the download is still read as the job's format."""
    csv_resource = make_resource(aims.url, output_format="CSV")
    h = harness(res=csv_resource)
    for _ in range(6):
        data = h.tick()
        if data.run_requests:
            break
    (request,) = data.run_requests
    assert request.run_config["ops"][OP]["config"]["output_format"] == "CSV"

    json_resource = make_resource(aims.url, output_format="JSON")  # the setting changed since
    result = run(json_resource, warehouse, instance, run_config=request.run_config)

    meta = materialization_metadata(result, KEY)
    assert (meta["output_format"], meta["file_type"], meta["rows"]) == ("CSV", "csv", ROWS)
    table = ordered(read_table(warehouse, TABLE))
    assert [json.loads(p)["Order No"] for p in table["payload"]] == [r["Order No"] for r in aims.state.view_rows(VIEW)]


# -- publishlinks on the regional API hosts -------------------------------------------------
class RegionalHostsToSandbox(httpx.BaseTransport):
    """Sends requests for ``*.aims360.rest`` to the sandbox on loopback, as DNS would send them
    to AIMS360; records which host each request was for and whether it carried a token."""

    def __init__(self, sandbox_url: str) -> None:
        self.target = httpx.URL(sandbox_url)
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, str, bool]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host.endswith(".aims360.rest"), request.url  # nothing leaves loopback
        self.sent.append((request.url.host, request.url.path, "authorization" in request.headers))
        request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("api_host", ["apiwest.aims360.rest", "apieast.aims360.rest"])
def test_private_publishlink_on_the_docs_api_host_gets_the_token_for_a_regional_tenant(aims, api_host):
    """The Aqua page's publishlinks are on api.aims360.rest; a tenant's API host may be
    apiwest/apieast. The link is AIMS360's own: it gets the token without configuration."""
    aims.state.link_base_url = "https://api.aims360.rest"
    transport = RegionalHostsToSandbox(aims.url)
    res = make_resource(f"https://{api_host}")
    res._client = res.open_client(transport=transport)

    job = res.create_export_job(ORDERS)
    assert job.publish_link.startswith("https://api.aims360.rest/reports/v1.0/publishlink/")
    done = res.wait_for_job(job.job_id, timeout_seconds=10, first_poll_seconds=0.01)
    export = res.download_publishlink(done.publish_link, done.publish_link_access_scope, job_id=done.job_id)

    assert [r["Order No"] for r in export.records] == [r["Order No"] for r in aims.state.view_rows(VIEW)]
    hosts = {host for host, _, _ in transport.sent}
    assert hosts == {api_host, "api.aims360.rest"}
    (download,) = [(host, token) for host, path, token in transport.sent if "/publishlink/" in path]
    assert download == ("api.aims360.rest", True)
    served = [r for r in aims.sandbox.stats.calls() if "/publishlink/" in r.path]
    assert [r.status for r in served] == [200] and served[0].headers["authorization"].startswith("Bearer ")


def test_regional_trust_goes_only_to_aims360s_api_hosts(aims):
    # Another host still needs AIMS360_PUBLISHLINK_HOSTS, even for a regional tenant.
    aims.state.link_base_url = "https://files.aims360.rest"
    transport = RegionalHostsToSandbox(aims.url)
    res = make_resource("https://apiwest.aims360.rest")
    res._client = res.open_client(transport=transport)
    job = res.create_export_job(ORDERS)
    done = res.wait_for_job(job.job_id, timeout_seconds=10, first_poll_seconds=0.01)
    with pytest.raises(PublishlinkHostRefused, match="is on host files.aims360.rest"):
        res.download_publishlink(done.publish_link, "Private", job_id=done.job_id)
    assert not [path for _, path, _ in transport.sent if "/publishlink/" in path]


def test_trusted_publishlink_hosts():
    for api_host in REGIONAL_API_HOSTS:
        others = {h for h in REGIONAL_API_HOSTS if h != api_host}
        assert set(trusted_publishlink_hosts(f"https://{api_host}", [])) == others
        assert set(trusted_publishlink_hosts(f"https://{api_host.upper()}/", ["Files.Example.com "])) == others | {
            "files.example.com"
        }
    # Not an AIMS360 API host (a proxy, a sandbox, a look-alike): only what is configured.
    assert trusted_publishlink_hosts("https://aqua-proxy.example.com", []) == ()
    assert trusted_publishlink_hosts("https://api.aims360.rest.example.com", []) == ()
    assert trusted_publishlink_hosts("http://127.0.0.1:8000", ["127.0.0.2"]) == ("127.0.0.2",)
    assert make_resource("https://apieast.aims360.rest").allowed_token_hosts() == (
        "api.aims360.rest",
        "apiwest.aims360.rest",
    )
