"""`timesheet-assets demo | dev | sandbox | list | refresh | backfill`.

Every command that touches a Dagster instance picks it explicitly (``--home``, else
``DAGSTER_HOME``, else the local ``.dagster_home/``), so nobody needs a bare ``dagster`` call
in the repository root, where Dagster would load the production ``dagster.yaml``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from .commands.local import DEFAULT_DAYS, DEFAULT_RECORDS, LOCAL_HOME, LocalSetupError


def sandbox_exports(env: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines a POSIX shell reads back exactly (values quoted)."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def _sandbox(args: argparse.Namespace) -> int:
    from .commands.local import LocalWindow
    from .sandbox.registry import serve_sandboxes
    from .settings import enabled_vendors

    window = LocalWindow.ending_today(args.days, args.records)
    config = window.sandbox_config().model_copy(update={"seed": args.seed})
    with serve_sandboxes(enabled_vendors(), config, base_port=args.port) as running:
        print(f"# sandboxes on loopback; data for work dates {window.first} .. {window.last}")
        print('# paste into a shell (or: eval "$(timesheet-assets sandbox | grep ^export)" in another one)')
        for vendor, sandbox in running.items():
            print(f"# {vendor}: {sandbox.server.url}")
            for line in sandbox_exports(sandbox.env):
                print(line)
        for line in sandbox_exports({"TIMESHEET_START_DATE": window.first.isoformat()}):
            print(line)
        print("# sandboxes running; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(days=args.days, records=args.records, home=Path(args.home))


def _dev(args: argparse.Namespace) -> int:
    from .demo import run_dev

    return run_dev(port=args.port, days=args.days, records=args.records, home=Path(args.home))


def _list(args: argparse.Namespace) -> int:
    from .commands.operations import list_definitions

    return list_definitions(args.what)


def _refresh(args: argparse.Namespace) -> int:
    from .commands.operations import parse_day, refresh

    first = parse_day(args.first, "--from") if args.first else None
    last = parse_day(args.last, "--to") if args.last else None
    return refresh(args.vendor, first, last, home=args.home, wait=args.wait)


def _backfill(args: argparse.Namespace) -> int:
    from .commands.operations import backfill, parse_day

    return backfill(
        parse_day(args.first, "--from"),
        parse_day(args.last, "--to"),
        vendors=args.vendor or [],
        assets=args.asset or [],
        home=args.home,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timesheet-assets")
    sub = parser.add_subparsers(dest="command", required=True)

    sb = sub.add_parser("sandbox", help="serve every enabled vendor sandbox on 127.0.0.1 and print the exports")
    sb.add_argument("--port", type=int, default=8900, help="first port; vendors take consecutive ports")
    sb.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="time records per vendor")
    sb.add_argument("--days", type=int, default=DEFAULT_DAYS, help="days of data, up to today")
    sb.add_argument("--seed", type=int, default=42)
    sb.set_defaults(func=_sandbox)

    for name, func, text in (
        ("demo", _demo, "run refresh_all against the sandboxes, with progress and a summary"),
        ("dev", _dev, "sandboxes plus the Dagster UI and daemon (dagster dev) on the local home"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument(
            "--days", type=int, default=DEFAULT_DAYS, help="days of sandbox data (and partitions), up to today"
        )
        command.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="time records per vendor sandbox")
        command.add_argument("--home", default=str(LOCAL_HOME), help="the local Dagster home")
        if name == "dev":
            command.add_argument("--port", type=int, default=3000)
        command.set_defaults(func=func)

    ls = sub.add_parser("list", help="list the code location's assets, jobs, schedules and sensors")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "assets", "jobs", "schedules", "sensors"])
    ls.set_defaults(func=_list)

    home_help = "Dagster home of the instance (default: DAGSTER_HOME, else .dagster_home/)"
    rf = sub.add_parser(
        "refresh", help="one run re-reading a vendor's work dates (refresh_<vendor>), as the daily schedule does"
    )
    rf.add_argument("vendor", help="aimsio, ajera, blikk, ibuildapp, or all")
    rf.add_argument("--from", dest="first", help="first work date (default: the lookback window's)")
    rf.add_argument("--to", dest="last", help="last work date (default: today, UTC)")
    rf.add_argument(
        "--wait", action="store_true", help="run it here and follow it, instead of queueing it for the daemon"
    )
    rf.add_argument("--home", help=home_help)
    rf.set_defaults(func=_refresh)

    bf = sub.add_parser("backfill", help="a Dagster backfill of the work-date partitions (the daemon runs it)")
    bf.add_argument("--from", dest="first", required=True, help="first work date")
    bf.add_argument("--to", dest="last", required=True, help="last work date")
    bf.add_argument("--vendor", action="append", help="only this vendor's assets (repeatable); conformed follows")
    bf.add_argument("--asset", action="append", help="only this asset key, e.g. raw/blikk/time_reports (repeatable)")
    bf.add_argument("--home", help=home_help)
    bf.set_defaults(func=_backfill)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LocalSetupError as exc:
        print(f"timesheet-assets {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
