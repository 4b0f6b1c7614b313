"""`timesheet-assets demo | dev | sandbox`."""

from __future__ import annotations

import argparse
import sys
import time


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox.data import SandboxConfig
    from .sandbox.registry import serve_sandboxes
    from .settings import enabled_vendors

    config = SandboxConfig(time_records=args.records, seed=args.seed)
    with serve_sandboxes(enabled_vendors(), config, base_port=args.port) as running:
        for vendor, sandbox in running.items():
            print(f"{vendor:10s} {sandbox.server.url}")
            for name, value in sandbox.env.items():
                print(f"    export {name}={value}")
        print("sandboxes running; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(days=args.days, records=args.records)


def _dev(args: argparse.Namespace) -> int:
    from .demo import run_dev

    return run_dev(port=args.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timesheet-assets")
    sub = parser.add_subparsers(dest="command", required=True)
    sb = sub.add_parser("sandbox", help="serve every enabled vendor sandbox on 127.0.0.1")
    sb.add_argument("--port", type=int, default=8900, help="first port; vendors take consecutive ports")
    sb.add_argument("--records", type=int, default=300, help="time records per vendor")
    sb.add_argument("--seed", type=int, default=42)
    sb.set_defaults(func=_sandbox)
    demo = sub.add_parser("demo", help="materialize everything against the sandboxes and summarise")
    demo.add_argument("--days", type=int, default=14, help="how many recent days to load")
    demo.add_argument("--records", type=int, default=300, help="time records per vendor sandbox")
    demo.set_defaults(func=_demo)
    dev = sub.add_parser("dev", help="sandboxes plus the Dagster UI (dagster dev)")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=_dev)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
