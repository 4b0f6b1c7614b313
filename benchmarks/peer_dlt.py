"""The peer baseline: the minimal dlt ``rest_api`` pipeline a data engineer would write for
Blikk time reports, loading one work-date range into DuckDB.

It is what the refresh is compared with: one token request (the document's
``POST /v1/Auth/Token`` with Basic credentials), then ``GET /v1/Core/TimeReports`` page by
page (``page``/``pageSize=100``, ``totalPages`` from the answer) into a ``time_reports``
table. No rate limiting of its own: dlt's HTTP client retries a 429 after the ``Retry-After``
the API sends. Run as its own process, as ``python pipeline.py`` would be, so its wall time
includes the interpreter and dlt's import:

    BLIKK_BASE_URL=... BLIKK_APP_ID=... BLIKK_APP_SECRET=... \\
        python -m benchmarks.peer_dlt --first 2026-11-01 --last 2026-11-14 --workdir /tmp/peer

It prints one JSON object: rows loaded and the seconds the pipeline itself took.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path


def load_time_reports(base_url: str, app_id: str, app_secret: str, first: str, last: str, workdir: Path) -> int:
    # No telemetry and no state outside the work folder: the benchmark talks to loopback only.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DLT_DATA_DIR", str(workdir / "dlt_data"))
    import dlt
    from dlt.sources.helpers import requests
    from dlt.sources.rest_api import rest_api_source

    basic = base64.b64encode(f"{app_id}:{app_secret}".encode()).decode()
    token = requests.post(base_url.rstrip("/") + "/v1/Auth/Token", headers={"Authorization": f"Basic {basic}"}).json()[
        "accessToken"
    ]
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url.rstrip("/") + "/",
                "auth": {"type": "bearer", "token": token},
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    "total_path": "totalPages",
                },
            },
            "resources": [
                {
                    "name": "time_reports",
                    "endpoint": {
                        "path": "v1/Core/TimeReports",
                        "params": {
                            "pageSize": 100,
                            "filter.from": first,
                            "filter.to": last,
                            "sortBy": "createdDate",
                            "sortOrder": "ascending",
                        },
                        "data_selector": "items",
                    },
                    "primary_key": "id",
                    "write_disposition": "replace",
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="blikk_peer",
        destination=dlt.destinations.duckdb(str(workdir / "peer.duckdb")),
        dataset_name="blikk",
        pipelines_dir=str(workdir / "pipelines"),
    )
    info = pipeline.run(source)
    info.raise_on_failed_jobs()
    with pipeline.sql_client() as client:
        return int(client.execute_sql("SELECT count(*) FROM time_reports")[0][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", required=True)
    parser.add_argument("--last", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = os.environ
    rows = load_time_reports(
        env["BLIKK_BASE_URL"], env["BLIKK_APP_ID"], env["BLIKK_APP_SECRET"], args.first, args.last, args.workdir
    )
    print(json.dumps({"rows": rows, "pipeline_s": round(time.perf_counter() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
