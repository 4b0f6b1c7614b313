"""The view asset: run from the sensor's RunRequest, materialized by hand, and the typed frame
for JSON, CSV and Excel outputs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.vendors.aims360.assets import build_view_asset

from .conftest import OP, ROWS, calls, make_resource, make_settings, status_calls

KEY = ["raw", "aims360", "orders_open_orders"]
TABLE = "aims360.orders_open_orders"
FAST_POLLS = {"ops": {OP: {"config": {"first_poll_seconds": 0.01}}}}


def run_request_of(h):
    for _ in range(6):
        data = h.tick()
        if data.run_requests:
            return data.run_requests[0]
    raise AssertionError("the sensor never requested a run")


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(_n=frame["record_key"].astype(int)).sort_values("_n").drop(columns="_n").reset_index(drop=True)


def test_run_request_materializes_exactly_the_sandbox_rows(aims, harness, instance, warehouse, resource):
    h = harness()
    request = run_request_of(h)
    exports, polls, downloads = calls(aims, "/exportdata"), status_calls(aims), calls(aims, "/publishlink/")

    result = materialize(h.assets(), {"aims360": resource}, warehouse, instance=instance, run_config=request.run_config)

    # The run only downloads: the sensor already did the job handling.
    assert (calls(aims, "/exportdata"), status_calls(aims)) == (exports, polls)
    assert calls(aims, "/publishlink/") == downloads + 1
    table = ordered(read_table(warehouse, TABLE))
    served = aims.state.view_rows("Orders/Open Orders")
    assert len(table) == len(served) == ROWS
    assert [json.loads(p) for p in table["payload"]] == served
    assert table["order_no"].tolist() == [r["Order No"] for r in served]
    assert table["total_amount"].tolist() == [r["Total Amount"] for r in served]
    assert table["total_qty"].tolist() == [r["Total Qty"] for r in served]
    assert table["rush"].tolist() == [r["Rush"] for r in served]
    assert [d.date().isoformat() for d in table["order_date"]] == [r["Order Date"] for r in served]
    assert table["notes"].where(table["notes"].notna(), None).tolist() == [r["Notes"] for r in served]
    assert table["quarantine_reason"].isna().all()

    config = request.run_config["ops"][OP]["config"]
    meta = materialization_metadata(result, KEY)
    assert meta["job_id"] == config["job_id"]
    assert meta["completed_date"] == config["completed_date"]
    assert meta["rows"] == ROWS
    assert meta["columns"] == 10
    assert meta["output_format"] == "JSON"
    assert meta["bytes"] == meta["bytes_received"] > 0
    assert meta["requests"] == 1


def test_json_csv_and_excel_outputs_give_equal_frames(aims, instance, tmp_path: Path):
    settings = make_settings()
    frames = {}
    types = {}
    for output_format in ("JSON", "CSV", "Excel"):
        warehouse = str(tmp_path / f"{output_format}.duckdb")
        result = materialize(
            [build_view_asset(v, settings) for v in settings.views],
            {"aims360": make_resource(aims.url, output_format=output_format)},
            warehouse,
            instance=instance,
            run_config=FAST_POLLS,
        )
        assert materialization_metadata(result, KEY)["output_format"] == output_format
        frames[output_format] = ordered(read_table(warehouse, TABLE)).drop(columns=["payload", "ingested_at"])
        with duckdb.connect(warehouse, read_only=True) as conn:
            types[output_format] = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'orders_open_orders' ORDER BY ordinal_position"
                ).fetchall()
            )
    assert calls(aims, "/exportdata") == 3
    assert len(frames["JSON"]) == ROWS
    pd.testing.assert_frame_equal(frames["JSON"], frames["CSV"])
    pd.testing.assert_frame_equal(frames["JSON"], frames["Excel"])
    assert types["JSON"] == types["CSV"] == types["Excel"]
    assert {
        k: types["JSON"][k] for k in ("order_no", "total_qty", "total_amount", "rush", "order_date", "last_modified")
    } == {
        "order_no": "VARCHAR",  # leading zeros: a code, not a number
        "total_qty": "BIGINT",
        "total_amount": "DOUBLE",
        "rush": "BOOLEAN",
        "order_date": "DATE",
        "last_modified": "TIMESTAMP WITH TIME ZONE",
    }


def test_manual_materialization_creates_then_reruns_its_job(aims, instance, warehouse, resource):
    settings = make_settings()
    assets = [build_view_asset(v, settings) for v in settings.views]
    first = materialize(assets, {"aims360": resource}, warehouse, instance=instance, run_config=FAST_POLLS)
    first_meta = materialization_metadata(first, KEY)
    assert calls(aims, "/exportdata") == 1
    assert first_meta["rows"] == ROWS

    aims.state.change_view("Orders/Open Orders")
    second = materialize(assets, {"aims360": resource}, warehouse, instance=instance, run_config=FAST_POLLS)
    second_meta = materialization_metadata(second, KEY)
    assert calls(aims, "/exportdata") == 1
    assert calls(aims, f"/backgroundjob/{first_meta['job_id']}/rerun") == 1
    assert second_meta["job_id"] == first_meta["job_id"]
    assert second_meta["completed_date"] != first_meta["completed_date"]
    # The rerun brought the changed rows; the table was replaced, not appended to.
    table = ordered(read_table(warehouse, TABLE))
    served = aims.state.view_rows("Orders/Open Orders")
    assert len(table) == ROWS
    assert table["total_amount"].tolist() == [r["Total Amount"] for r in served]
    assert served != aims.state.view("Orders/Open Orders").rows(0)


def test_expired_publishlink_in_run_config_falls_back_to_a_fresh_export(aims, harness, instance, warehouse, resource):
    h = harness()
    request = run_request_of(h)
    job_id = request.run_config["ops"][OP]["config"]["job_id"]
    aims.state.purge(job_id)
    run_config = {"ops": {OP: {"config": {**request.run_config["ops"][OP]["config"], "first_poll_seconds": 0.01}}}}

    result = materialize(h.assets(), {"aims360": resource}, warehouse, instance=instance, run_config=run_config)

    meta = materialization_metadata(result, KEY)
    assert meta["job_id"] != job_id
    assert calls(aims, "/exportdata") == 2  # the purged job could not be rerun
    assert calls(aims, f"/backgroundjob/{job_id}/rerun") == 1
    assert len(read_table(warehouse, TABLE)) == ROWS
    warnings = [e.message for e in instance.all_logs(result.run_id) if "is gone (HTTP 410" in (e.message or "")]
    assert warnings and "exporting the view again" in warnings[0]
