"""All of issue 10's benchmarks in one command (``make bench``).

1. **Vendors against their documented limits.** Each vendor's ``benchmarks/vendor_<v>.py``
   starts its sandbox on loopback with the documented limit enforced and runs what a
   materialization sends: a full run, a run with nothing changed, a run after ~1 % of the
   records changed. One table row per vendor and scenario.
2. **Processing with the network taken out** (``benchmarks/processing.py``): records/s of
   the iBuildApp time-entry path from pre-recorded pages to DuckDB for 100k and 1M records
   next to bare ``json.loads`` of the same bytes, peak RSS of the 1M run, load time of the
   code location.
3. **Before/after of each optimisation**: the processing path with each one reverted in turn,
   and the numbers measured on the code before this work (``baseline_before.json``).
4. **The floor of the design** (``benchmarks/floor.py``): the least work docs/contracts.md allows for
   each stage (parse, validate, payload, frame, writes, conform), stage by stage, with the ratio
   each prefix reaches, and DuckDB's compiled JSON reader outside the design for scale.
5. **Time to fresh data** (``benchmarks/freshness.py``): each vendor's refresh launched as a
   deployment launches it, timed from the click to the conformed table, against the request
   floor; Blikk and Aimsio under three ``nice -n 19`` CPU hogs; the dlt ``rest_api`` peer on
   the same Blikk sandbox; a one-year Blikk backfill and an Aimsio first load of 5,000 timecards;
   requests per daily refresh.
6. **Warehouse backends** (``benchmarks/warehouse.py``): 1M raw rows and their conformed rows
   written into DuckDB and PostgreSQL, rows/s and peak RSS side by side.

Everything goes to stdout and to ``benchmarks/RESULTS.md``.

    python -m benchmarks.run            # the full run (about 35 minutes on 2 cores)
    python -m benchmarks.run --quick    # a smoke run on tiny sizes (no RESULTS.md unless --output)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.machine_load import interpreter_import_seconds

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
BASELINE = HERE / "baseline_before.json"

VENDORS = ("aimsio", "ajera", "aims360", "blikk", "ibuildapp")
# Sizes that reach each vendor's steady state in well under a minute per scenario: Blikk's
# full run is > 60 requests at 4/s (pages of 100), Aimsio's > 200 detail calls at 10/s.
FULL_SIZES = {"aimsio": 250, "ajera": 3000, "aims360": 6000, "blikk": 6000, "ibuildapp": 5000}
QUICK_SIZES = {"aimsio": 20, "ajera": 60, "aims360": 200, "blikk": 300, "ibuildapp": 300}
PROCESSING_SIZES = [100_000, 1_000_000]
QUICK_PROCESSING_SIZES = [2_000]
WAREHOUSE_RECORDS = 1_000_000
WAREHOUSE_QUICK_RECORDS = 2_000
WAREHOUSE_HEADING = "## Warehouse backends side by side"
UTILISATION_TARGET = 95.0
# Utilisation is only meaningful once a run makes enough calls to reach the limit's steady
# state; scenarios below this many requests show "—" in the target column.
STEADY_STATE_REQUESTS = 20

VENDOR_COLUMNS = [
    ("vendor", "vendor"),
    ("scenario", "scenario"),
    ("requests", "requests"),
    ("records", "records"),
    ("wall_s", "wall s"),
    ("achieved_rps", "achieved req/s"),
    ("documented_limit_rps", "documented limit req/s"),
    ("utilisation_pct", "utilisation %"),
    ("rate_violations", "429s/refusals"),
    ("requests_per_1000_records", "requests per 1,000 records"),
]


# -- vendors ------------------------------------------------------------------------------------
def run_vendors(
    sizes: dict[str, int], only: list[str] | None = None, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Every vendor's ``run_benchmark(records)``; a vendor that fails gets an error row (the
    others still run)."""
    rows: list[dict[str, Any]] = []
    for vendor in VENDORS:
        if only and vendor not in only:
            continue
        started = time.perf_counter()
        log(f"vendor benchmark: {vendor} ({sizes[vendor]} records) ...")
        try:
            module = importlib.import_module(f"benchmarks.vendor_{vendor}")
            produced = module.run_benchmark(sizes[vendor])
        except Exception as exc:  # noqa: BLE001 - one broken vendor must not hide the others
            log(traceback.format_exc())
            rows.append({"vendor": vendor, "scenario": "FAILED", "error": f"{type(exc).__name__}: {exc}"})
            continue
        for row in produced:
            rows.append({**row, "size_arg": sizes[vendor]})
        log(f"  done in {time.perf_counter() - started:.1f} s")
    return rows


def _target(row: dict[str, Any]) -> str:
    if row.get("scenario") == "FAILED":
        return "failed"
    violations = row.get("rate_violations") or 0
    limit = row.get("documented_limit_rps")
    if limit is None:
        return "no limit documented; " + ("0 violations" if not violations else f"{violations} violations")
    if "sequential" in str(row.get("scenario")):
        return "— (comparison: one call at a time)"
    if (row.get("requests") or 0) < STEADY_STATE_REQUESTS:
        return "— (too few requests)" + (f"; {violations} violations" if violations else "")
    utilisation = row.get("utilisation_pct") or 0.0
    met = utilisation >= UTILISATION_TARGET and not violations
    return ("met" if met else "NOT met") + f" (≥ {UTILISATION_TARGET:.0f} %, 0 violations)"


def _notes(row: dict[str, Any]) -> str:
    keep = (
        "peak_in_flight",
        "timed_out",
        "refused_in_flight",
        "queued",
        "latency_s",
        "speedup_over_sequential",
        "error",
    )
    return ", ".join(f"{k}={row[k]}" for k in keep if row.get(k) not in (None, 0, "")) or ""


def vendor_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    headers = [title for _, title in VENDOR_COLUMNS] + ["target", "notes"]
    body = [[_cell(row.get(key)) for key, _ in VENDOR_COLUMNS] + [_target(row), _notes(row)] for row in rows]
    return tabulate(body, headers=headers, tablefmt="github")


def _cell(value: Any) -> Any:
    return "—" if value is None else value


# -- report ---------------------------------------------------------------------------------------
def _baseline_section(baseline: dict[str, Any] | None, processing: dict[str, Any] | None) -> list[str]:
    if not baseline:
        return []
    lines = [
        "## Before this work",
        "",
        f"Measured on commit `{baseline['commit']}` ({baseline['date']}, same machine, same command and data) "
        "before any of the changes below: the asset read every page into one list of dicts, validated each "
        "entry with the lenient `TimeEntry` model, joined the side tables and built a dict per row.",
        "",
    ]
    from tabulate import tabulate

    now = {r["records"]: r for r in (processing or {}).get("rows", [])}
    body = []
    for row in baseline["rows"]:
        after = now.get(row["records"])
        body.append(
            [
                row["records"],
                f"{row['pipeline_rec_per_s']:,.0f}",
                f"{after['pipeline_rec_per_s']:,.0f}" if after else "—",
                row["ratio"],
                after["ratio"] if after else "—",
                row["peak_rss_mb"],
                after["peak_rss_mb"] if after else "—",
                " / ".join(
                    str(row["stages"][k])
                    for k in ("fetch_parse_validate_raw_frame", "conform", "duckdb_write_raw", "duckdb_write_conformed")
                ),
            ]
        )
    lines.append(
        tabulate(
            body,
            headers=[
                "records",
                "rec/s before",
                "rec/s now",
                "ratio before",
                "ratio now",
                "peak RSS MB before",
                "peak RSS MB now",
                "stages before (s): fetch+raw / conform / write raw / write conformed",
            ],
            tablefmt="github",
        )
    )
    lines.append("")
    return lines


def _floor_section(result: dict[str, Any] | None, processing: dict[str, Any] | None) -> list[str]:
    """How far any pipeline within the design could go, next to the shipped one."""
    if not result:
        return []
    from benchmarks import floor

    # Seconds, not ratios, against the shipped pipeline: each table has its own json.loads run.
    shipped = {r["records"]: r["pipeline_s"] for r in (processing or {}).get("rows", [])}
    closing = []
    for size in result["sizes"]:
        rows = {r["stage"]: r for r in size["rows"]}
        closing.append(
            f"{size['records']:,} records: the floor of the whole design reaches ratio "
            f"**{rows['conform_write']['ratio']}** in {rows['conform_write']['seconds']} s (the shipped "
            f"pipeline: {shipped.get(size['records'], '—')} s); the in-memory stages alone "
            f"{rows['raw_frame']['ratio']}; DuckDB's compiled path {rows[floor.ELT]['ratio']}."
        )
    return [
        "## The floor of the design",
        "",
        "What any implementation within docs/contracts.md could reach on the same pages (`benchmarks/floor.py`): "
        "each stage the least work it can be — pydantic's one-pass `validate_json` against the strict "
        "`TimeEntryFast`, `to_json` for the payload, a pandas frame, plain DuckDB inserts, the vendor's "
        "`conform_timesheets` — with no HTTP, envelope checks, side-table join, duplicates, window, quarantine "
        "or IO-manager transaction. Every row is a full pass doing its stage and all those above it, in one "
        f"process per size, the collector paused (not for the `json.loads` reference), best of {result['repeat']}; "
        "`ratio` = `json.loads` seconds ÷ the row's seconds. The last row is outside the design, for scale: DuckDB's own JSON reader writes the raw "
        "table and a SQL conform the conformed one (no pydantic, no pandas).",
        "",
        floor.floor_table(result),
        "",
        *[f"- {line}" for line in closing],
        "",
    ]


def _speed_sentence(machine: dict[str, Any]) -> str:
    speed = machine.get("import_dagster_s")
    if not speed:
        return ""
    return (
        f" Machine speed (a fresh interpreter's `import dagster`, median of 3): {speed[0]} s when the run "
        f"began, {speed[1]} s when it ended."
    )


def render_report(result: dict[str, Any], command: str) -> str:
    from benchmarks import processing

    machine = result["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{command}` on {result['finished_at']} (took {result['took_s']:.0f} s).",
        "",
        f"Machine: {machine['cores']} cores, Python {machine['python']}, {machine['platform']}; "
        f"pandas {machine['pandas']}, pydantic {machine['pydantic']}, DuckDB {machine['duckdb']}. "
        "Timings are the best of several runs (the machine is shared with other test runs)." + _speed_sentence(machine),
        "",
    ]
    if result.get("vendors") is not None:
        lines += [
            "## Vendors against their documented limits",
            "",
            "Requests and 429s/refusals are counted by each sandbox itself. `records` counts what the run read "
            "(time records plus project records where the vendor run includes them). Utilisation is "
            "achieved ÷ documented rate; vendors without a documented limit run at the client's conservative "
            "default. Incremental cost: `no_change` and the 1 % scenario.",
            "",
            vendor_table(result["vendors"]),
            "",
        ]
    from benchmarks import freshness

    lines += freshness.render(result.get("freshness") or {})
    # Before the processing sections: a vendor-only run keeps those verbatim from an earlier report.
    lines += _warehouse_section(result.get("warehouse"))
    proc = result.get("processing")
    if proc:
        lines += [
            "## Processing with the network taken out",
            "",
            "iBuildApp time entries: pre-recorded `ts/search` pages (the sandbox's generator and rendering, "
            f"{processing.EMPLOYEES} employees, {processing.PROJECTS} projects, pages of 500 with their "
            "`users`/`tasks`/`projects` side tables) served by an in-process `httpx.MockTransport` to the real "
            "`IBuildAppResource`, then `load_time_entries` (what the asset runs: parse → validate/quarantine/"
            "payload → raw frame) written through `WarehouseIOManager.handle_output` into a fresh DuckDB file, "
            "then `conform_timesheets` of that frame written the same way (the order of a run). "
            "Each run in a fresh process after a "
            "2,000-record warm-up; page-file reads are left out. `ratio` = pipeline records/s ÷ `json.loads` "
            "records/s on the same bytes (target ≥ 1.0); `ratio w/o DuckDB` stops after conform.",
            "",
            processing.processing_table(proc),
            "",
            "Seconds per stage (best run):",
            "",
            processing.stages_table(proc),
            "",
            f"Code-location load (`import timesheet_assets.definitions` + `defs()`, fresh interpreter): best "
            f"**{proc['import_seconds_best']} s** of {proc['import_seconds_all']} (target < 2 s).",
            "",
        ]
        largest = max(proc["rows"], key=lambda r: r["records"])
        lines += [
            f"Peak RSS of the {largest['records']:,}-record run: **{largest['peak_rss_mb']:,.0f} MB** (target < 2,048 MB).",
            "",
        ]
    ablation = result.get("ablation")
    if ablation:
        lines += [
            "## Before/after of each optimisation",
            "",
            f"{ablation['records']:,} records, the in-memory part (fetch → parse → validate → raw frame → conform; "
            f"no DuckDB), each optimisation reverted in turn in one process (variants interleaved, best of "
            f"{ablation.get('repeat', 3)}); `json.loads` of the same pages: {ablation['json_loads_s']} s.",
            "",
            processing.ablation_table(ablation),
            "",
        ]
        lines += [f"- `{r['variant']}`: {r['reverted']}" for r in ablation["rows"]]
        lines.append("")
    if proc:
        lines += _baseline_section(result.get("baseline"), proc)
    lines += _floor_section(result.get("floor"), proc)
    lines += result.get("kept_processing_sections") or []
    lines += ["## Targets", "", *targets(result), "", "## Analysis", "", ANALYSIS]
    return "\n".join(lines)


def _warehouse_section(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    from benchmarks import warehouse

    return [
        WAREHOUSE_HEADING,
        "",
        f"The raw frame of {result['records']:,} iBuildApp records and its conformed rows (`benchmarks/warehouse.py`), "
        "written through `WarehouseIOManager.handle_output` as a single-run backfill of their window writes them, "
        "into a fresh DuckDB file and into a fresh database on a PostgreSQL server started on this machine "
        "(fsync on, loopback TCP); each backend in its own process after a 2,000-row warm-up. `RSS with frames` "
        "is the process with both frames loaded, before the writes.",
        "",
        warehouse.warehouse_table(result),
        "",
    ]


def targets(result: dict[str, Any]) -> list[str]:
    """The issue's targets, each with met / NOT met from this run's numbers."""
    lines = []
    for row in result.get("vendors") or []:
        if row.get("documented_limit_rps") and row.get("scenario") == "full":
            lines.append(
                f"- {row['vendor']} utilisation ≥ {UTILISATION_TARGET:.0f} % with 0 violations: "
                f"{row['utilisation_pct']} %, {row['rate_violations']} violations → {_target(row).split(' ')[0]}"
            )
    for row in result.get("vendors") or []:
        if row.get("vendor") == "aimsio" and row.get("scenario") in ("no_change", "changed_1pct"):
            changed = max(1, (row.get("records") or 0) // 100)
            expected = 1 if row["scenario"] == "no_change" else 1 + changed
            lines.append(
                f"- aimsio {row['scenario']}: {row['requests']} requests (1 list call"
                + ("" if row["scenario"] == "no_change" else f" + {changed} changed details")
                + f" = {expected}) → {'met' if row['requests'] == expected else 'NOT met'}"
            )
    for row in (result.get("warehouse") or {}).get("rows", []):
        if row["backend"] == "postgresql":
            target = result["warehouse"]["postgres_target_rows_per_s"]
            lines.append(
                f"- PostgreSQL warehouse load ≥ {target:,} rows/s: {row['rows_per_s']:,} rows/s → "
                + ("met" if row["rows_per_s"] >= target else "NOT met")
            )
    from benchmarks import freshness

    lines += freshness.targets(result.get("freshness") or {})
    proc = result.get("processing")
    if proc:
        for row in proc["rows"]:
            lines.append(
                f"- (retired) processing ratio ≥ 1.0 at {row['records']:,} records: {row['ratio']} "
                f"({row['ratio_without_duckdb']} without the DuckDB writes); see the analysis"
            )
        lines += headroom_lines(proc)
        largest = max(proc["rows"], key=lambda r: r["records"])
        lines.append(
            f"- peak RSS < 2 GB at {largest['records']:,} records: {largest['peak_rss_mb']:,.0f} MB → "
            + ("met" if largest["peak_rss_mb"] < 2048 else "NOT met")
        )
        lines.append(
            f"- code-location load < 2 s: {proc['import_seconds_best']} s → "
            + ("met" if proc["import_seconds_best"] < 2 else "NOT met")
        )
    elif result.get("kept_processing_rows"):
        lines += headroom_lines({"rows": result["kept_processing_rows"]})
    return lines


KEPT_SECTIONS = (
    "## Processing with the network taken out",
    "## Before/after of each optimisation",
    "## Before this work",
    "## The floor of the design",
)


def kept_processing(report: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The processing sections of an earlier report, verbatim, and its pipeline rows (records,
    records/s) for the headroom line — for a run that re-measures only the vendors."""
    text = report.read_text()
    first = min(text.index(h) for h in KEPT_SECTIONS if h in text)
    end = text.index("## Targets", first)
    produced = text.splitlines()[2] if text.startswith("# Benchmark results") else ""
    sections = text[first:end].rstrip().splitlines()
    note = [
        f"_The processing sections below are kept from an earlier report ({produced.strip()}); "
        "the code they measure did not change and this run did not re-measure them._",
        "",
    ]
    rows = []
    start = text.index("## Processing with the network taken out")
    end = text.index("Seconds per stage", start)
    table = [line for line in text[start:end].splitlines() if line.startswith("|")]
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells[0].isdigit():
            continue
        rows.append({"records": int(cells[0]), "pipeline_rec_per_s": float(cells[4].replace(",", ""))})
    return note + sections + [""], rows


# What a vendor can deliver at most: its documented request rate × the records one request
# returns (Blikk pages of 100; Aimsio one timecard per detail call).
DELIVERY_RECORDS_PER_S = {"blikk": 4.0 * 100, "aimsio": 10.0 * 1}


def headroom_lines(proc: dict[str, Any]) -> list[str]:
    """Processing speed against what the fastest vendor can deliver."""
    fastest = max(DELIVERY_RECORDS_PER_S, key=DELIVERY_RECORDS_PER_S.get)
    delivery = DELIVERY_RECORDS_PER_S[fastest]
    lines = []
    for row in proc["rows"]:
        rate = row["pipeline_rec_per_s"]
        lines.append(
            f"- processing headroom at {row['records']:,} records: {rate:,.0f} records/s against "
            f"{fastest}'s {delivery:,.0f} records/s at its documented limit = {rate / delivery:,.0f}× "
            "(the network, not processing, sets the time to fresh data)"
        )
    return lines


# What the investigation behind this report found (measured on 2026-11-23 on this machine; the
# tables above are re-measured on every run, these paragraphs are not).
ANALYSIS = """**Where the processing time goes** (shipped path, 100k records, CPU µs per record, GC paused):
`pydantic_core.from_json` of the pages 2.5, strict batch validation (`TimeEntryFast`) 1.7, one
payload string per record (`pydantic_core.to_json`) 1.3, typed columns 2.6, frame/duplicates/side-table
join ≈ 1.5 — against 3.9 for bare `json.loads`. Parsing is already faster than `json.loads`
(`validate_json` of the pages into strict `TypedDict`s measured 0.29 s against 0.58 s for
`json.loads` at 100k records), but the payload string every record must keep, the typed columns and
above all the DuckDB write cost more than the parse. Writing the 1M-row raw frame, column by column
(1 GB budget): the 11 text columns 1.3 s, the payload column 1.8 s, the dates and timestamps 0.4 s —
the write of the raw table alone is about one `json.loads` of the same bytes (pandas object strings
are converted one by one; Arrow strings write in 1.7 s but converting the frame to Arrow costs 2.7 s).

**The ratio target is out of reach of this design on this machine, by measurement.** The floor
table (`benchmarks/floor.py`) builds the least pipeline docs/contracts.md allows, stage by stage, with
none of the shipped one's bookkeeping (HTTP, envelope, side-table join, duplicates, window,
quarantine, transaction). The issue's reasoning holds for its first half: `validate_json` parses
and validates in one pass at ≈ 1.6–1.9× the rate of `json.loads`, and with each record's payload
text added it is still ≈ 1.2–1.4×. What it leaves out is the rest: the typed columns of a pandas
frame more than halve the rate (≈ 0.5–0.6), DuckDB's ingestion of pandas strings with its
checkpoints takes it to ≈ 0.33–0.42, and the vendor's `conform_timesheets` with the conformed
write to ≈ 0.19–0.25 (runs of 2026-11-23). That floor bounds any pipeline within the design; the
shipped pipeline takes 1.0–1.5× the floor's time (its ratio, 0.12–0.18 over those runs, moves
with the `json.loads` reference more than with the pipeline). Even outside the design, DuckDB's
compiled JSON reader writing the raw table and a SQL conform (no pydantic, no pandas) reaches
≈ 0.3–0.4 at 100k and ≈ 0.8 at 1M records on these 2 cores: storing the payload column and
checkpointing it cost about one `json.loads` by themselves. So ≥ 1.0 would need the raw payload
column (docs/contracts.md: "Raw assets keep the vendor payload") dropped or kept as the pages' bytes
outside DuckDB, and validation and conform moved into compiled code: a different product, not an
optimisation of this one.

**Memory: the 1M run is under 2 GB.** The peak was DuckDB's, during the raw write, and came from
two things, both changed:
- *Side-table objects on every row.* The raw table kept, per entry, `related_payload`: the user,
  task and project objects it joined (906 B on average — the sandbox's task objects list every user
  who booked on them — against 326 B of the entry's own payload). They now live once per day and
  object in `raw/ibuildapp/time_entry_side_tables`. 1M-row raw write: 16.0 s and +1.87 GB with them,
  4.3 s and +0.49 GB without; DuckDB file 441 MB → 123 MB.
- *DuckDB's default memory limit* (80 % of RAM) lets a writer keep every written block in memory
  until the connection closes. Each warehouse connection now runs with `memory_limit`
  (`TIMESHEET_WAREHOUSE_MEMORY_LIMIT`, default 1GB). With the side objects still per row that
  alone took the write to +0.86 GB (peak 1.75 GB for the whole pipeline).
Pipeline peak RSS at 1M: 2,737 MB before → 1,754 MB with the memory limit → ≈ 1,400 MB with both.
`SET preserve_insertion_order=false` would take the raw write from 4.5 s to 2.7 s more, at the price
of rows coming back in no particular order; not applied.

**Vendors.** Blikk and Aimsio run at about 95 % of their documented rate over a whole run (token and
step start included; 96–97 % over their paced requests) with no 429s or refusals; the
others have no documented limit and run at the client's conservative default (5/s, 2 in flight).
Aimsio's incremental runs cost 1 list call (+ the changed details); Blikk, Ajera, AIMS360 and iBuildApp
have no updated-since filter for these entities, so a re-read of the window costs the same as the
first read (AIMS360 re-runs the export job).
"""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of the benchmark code")
    parser.add_argument("--vendors", nargs="*", choices=VENDORS, help="only these vendors")
    parser.add_argument("--skip-vendors", action="store_true")
    parser.add_argument("--skip-processing", action="store_true")
    parser.add_argument("--skip-warehouse", action="store_true")
    parser.add_argument("--skip-freshness", action="store_true")
    parser.add_argument(
        "--processing-from",
        type=Path,
        default=None,
        help="with --skip-processing: keep the processing sections of this earlier report",
    )
    parser.add_argument(
        "--freshness",
        nargs="*",
        choices=("daily", "peer", "under_load", "tenant"),
        help="only these time-to-fresh-data scenarios",
    )
    parser.add_argument("--only-freshness", action="store_true", help="skip the vendor and processing benchmarks")
    parser.add_argument("--repeat", type=int, default=None, help="runs per processing measurement (best kept)")
    parser.add_argument(
        "--output", type=Path, default=None, help=f"report file (default {RESULTS.name}; none with --quick)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results as JSON")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        help="write the report from a results JSON (--json of an earlier run) without measuring",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.render is not None:
        result = json.loads(args.render.read_text())
        output = args.output or RESULTS
        output.write_text(render_report(result, result.get("command", "python -m benchmarks.run")))
        _log(f"wrote {output}")
        return 0

    from benchmarks import floor, processing

    started = time.perf_counter()
    command = "python -m benchmarks.run" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    result: dict[str, Any] = {"machine": processing.machine(), "command": command}
    speed_before = interpreter_import_seconds()
    if args.only_freshness:
        args.skip_vendors = args.skip_processing = args.skip_warehouse = True
    if not args.skip_freshness:
        from benchmarks import freshness

        plan = freshness.quick_plan() if args.quick else freshness.full_plan()
        result["freshness"] = freshness.run_all(plan, _log, set(args.freshness) if args.freshness else None)
        print("\n".join(freshness.render(result["freshness"])), flush=True)
    if not args.skip_vendors:
        result["vendors"] = run_vendors(sizes, args.vendors, _log)
        print(vendor_table(result["vendors"]), flush=True)
        print()
    if not args.skip_processing:
        repeat = args.repeat or (1 if args.quick else 3)
        process_sizes = QUICK_PROCESSING_SIZES if args.quick else PROCESSING_SIZES
        _log(f"processing benchmark: {process_sizes} records, best of {repeat} ...")
        result["processing"] = processing.run_processing(
            process_sizes, repeat=repeat, import_repeat=1 if args.quick else 3
        )
        print(processing.processing_table(result["processing"]))
        print()
        print(processing.stages_table(result["processing"]))
        print(f"\nload timesheet_assets.definitions: best {result['processing']['import_seconds_best']} s")
        ablation_records = QUICK_PROCESSING_SIZES[0] if args.quick else 100_000
        _log(f"before/after of each optimisation at {ablation_records} records ...")
        result["ablation"] = processing.run_ablation(ablation_records, repeat=repeat)
        result["ablation"]["repeat"] = repeat
        print()
        print(processing.ablation_table(result["ablation"]))
        _log(f"floor of the design: {process_sizes} records, best of {repeat} ...")
        result["floor"] = floor.run_floor(process_sizes, repeat=repeat)
        print()
        print(floor.floor_table(result["floor"]))
    if not args.skip_warehouse:
        from benchmarks import warehouse

        result["warehouse"] = warehouse.run_warehouse(
            WAREHOUSE_QUICK_RECORDS if args.quick else WAREHOUSE_RECORDS, log=_log
        )
        print()
        print(warehouse.warehouse_table(result["warehouse"]))
    if BASELINE.exists():
        result["baseline"] = json.loads(BASELINE.read_text())
    if args.skip_processing and args.processing_from is not None:
        result["kept_processing_sections"], result["kept_processing_rows"] = kept_processing(args.processing_from)
    result["machine"]["import_dagster_s"] = [speed_before, interpreter_import_seconds()]
    result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    result["took_s"] = time.perf_counter() - started
    output = args.output if args.output is not None else (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(render_report(result, command))
        _log(f"wrote {output}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
