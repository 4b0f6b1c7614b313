"""Run worker processes on this host, named so that a recycled process id is never mistaken
for the worker: host, boot, pid and the kernel's start time of the process (``/proc``, Linux)."""

from __future__ import annotations

import json
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from the state on (field 3); ``None`` when there is no such process.
    The command name (field 2) may hold spaces and parentheses, so split after its last ')'."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22: start time after boot, clock ticks


def process_group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (a worker and the step processes it
    started, which stay in its group after it dies)."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


@dataclass(frozen=True)
class WorkerProcess:
    """A run worker: the process a launcher started, leader of its own process group."""

    host: str
    boot: str
    pid: int
    start_ticks: int

    @classmethod
    def of(cls, pid: int) -> WorkerProcess:
        return cls(socket.gethostname(), boot_id(), pid, process_start_ticks(pid) or 0)

    def to_tag(self) -> str:
        return json.dumps(
            {"host": self.host, "boot": self.boot, "pid": self.pid, "start_ticks": self.start_ticks},
            sort_keys=True,
        )

    @classmethod
    def from_tag(cls, value: str) -> WorkerProcess:
        raw = json.loads(value)
        return cls(str(raw["host"]), str(raw.get("boot", "")), int(raw["pid"]), int(raw["start_ticks"]))

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def is_alive(self) -> bool:
        """True while this very process runs (not a zombie, not a later process given the same
        pid, not a process from before the machine restarted)."""
        if self.boot and self.boot != boot_id():
            return False
        fields = _stat_fields(self.pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        return int(fields[19]) == self.start_ticks

    def leftover_processes(self) -> list[int]:
        """Processes still in the worker's group (its step processes) once the worker is gone.
        A group id is not handed to a new process while any member lives, so these are the
        worker's own children."""
        if self.boot and self.boot != boot_id():
            return []
        members = process_group_members(self.pid)
        if self.pid in members and not self.is_alive():
            # Another process holds the worker's pid and leads a group of that id: Linux
            # reuses a pid only once its group is empty, so this group is not the worker's.
            return []
        return members

    def kill_group(self) -> list[int]:
        """SIGKILL whatever is left of the group; returns the pids that were killed."""
        members = self.leftover_processes()
        if members:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                return []
        return members
