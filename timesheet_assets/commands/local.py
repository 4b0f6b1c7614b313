"""The local setup ``make demo`` and ``make dev`` share: a Dagster home of their own, the
sandboxes' data window, and one ``dev`` per home."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

from ..location import write_workspace
from ..sandbox.data import SandboxConfig

LOCAL_HOME = Path(".dagster_home")
DEFAULT_DAYS = 14
DEFAULT_RECORDS = 300
# SQLite storage (Dagster's default) under the home; pools as in production.
LOCAL_INSTANCE_YAML = (
    "# The local instance of `make demo` / `make dev` (SQLite under this folder). The\n"
    "# repository's dagster.yaml is the production instance; it is not used here.\n"
    "telemetry:\n  enabled: false\n"
    "concurrency:\n  pools:\n    default_limit: 1\n"
)


class LocalSetupError(RuntimeError):
    """Something the user must change before the command can run; the message says what."""


def prepare_home(home: Path = LOCAL_HOME) -> Path:
    """Create the local Dagster home (instance config and workspace file) and point
    ``DAGSTER_HOME`` at it."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    write_workspace(home)
    os.environ["DAGSTER_HOME"] = str(home.resolve())
    return home.resolve()


@dataclass(frozen=True)
class LocalWindow:
    """The work dates the sandboxes hold data for: ``days`` days up to today (UTC, the
    partitions' timezone). The daily partitions start on its first day, so every partition
    the catalog shows is one the demo loads."""

    first: date
    last: date
    records: int = DEFAULT_RECORDS

    @classmethod
    def ending_today(cls, days: int = DEFAULT_DAYS, records: int = DEFAULT_RECORDS) -> LocalWindow:
        if days < 1:
            raise LocalSetupError(f"--days must be at least 1, got {days}")
        last = datetime.now(UTC).date()
        return cls(first=last - timedelta(days=days - 1), last=last, records=records)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(time_records=self.records, days=self.days, anchor_date=self.last)

    def apply_to_environment(self) -> None:
        """Partitions start where the sandbox data starts, unless ``TIMESHEET_START_DATE`` is
        set; the warehouse is ``warehouse.duckdb`` unless ``TIMESHEET_WAREHOUSE`` is set."""
        os.environ.setdefault("TIMESHEET_START_DATE", self.first.isoformat())
        os.environ.setdefault("TIMESHEET_WAREHOUSE", "warehouse.duckdb")

    def clamped_to_partitions(self) -> LocalWindow:
        """The window without the days before ``TIMESHEET_START_DATE`` (no such partitions)."""
        start = date.fromisoformat(os.environ.get("TIMESHEET_START_DATE", self.first.isoformat()))
        if start > self.last:
            raise LocalSetupError(
                f"TIMESHEET_START_DATE {start} is after the last day with data ({self.last}); "
                "unset it to start the partitions where the sandbox data starts"
            )
        return LocalWindow(first=max(self.first, start), last=self.last, records=self.records)


class HomeInUse(LocalSetupError):
    pass


class DevLock:
    """One ``timesheet-assets dev`` per Dagster home: two would run two daemons on one
    instance (double schedule ticks, runs dequeued twice). An exclusive ``flock`` on a file
    in the home, released by the OS when the process ends however it ends."""

    def __init__(self, home: Path) -> None:
        self.path = home / "dev.lock"
        self._file: IO[str] | None = None

    def acquire(self, port: int) -> DevLock:
        handle = open(self.path, "a+")  # noqa: SIM115 - held open as long as the lock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise HomeInUse(
                f"{holder} is already serving the Dagster home {self.path.parent}; a second "
                "one would run a second daemon on the same instance. Use the running UI, stop "
                "it first (Ctrl-C in its terminal), or start this one on its own home and port: "
                f"timesheet-assets dev --home <other folder> --port {port + 1}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"timesheet-assets dev (pid {os.getpid()}, http://127.0.0.1:{port})\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> DevLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a server binds it: closed connections lingering in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise LocalSetupError(
                f"port {port} on {host} is already in use; pick another: make dev PORT={port + 1}"
            ) from None
