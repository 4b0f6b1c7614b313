"""Which process sent each request a sandbox served, and when: the evidence for "no vendor
sees two call streams at once".

``CallLog.wrap(app, vendor)`` puts an ASGI layer in front of a sandbox app. For every request
it records when it arrived and was answered and the process on the other end of the loopback
connection (the socket's owner, found through ``/proc/net/tcp`` and ``/proc/<pid>/fd``, looked
up while the connection is open). A run's steps run in its worker, so a process is a run's
call stream; two processes in flight at the same vendor at once are two streams.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass(frozen=True)
class Call:
    vendor: str
    pid: int | None
    started: float
    ended: float
    method: str
    path: str
    status: int | None


def _socket_inode(client_port: int, server_port: int) -> int | None:
    """The inode of the client's end of a loopback TCP connection."""
    want_local = f"0100007F:{client_port:04X}"
    want_remote = f"0100007F:{server_port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if table == "tcp6":
                # IPv4-mapped loopback: ...0000FFFF0100007F:PORT
                local, remote = local[-13:], remote[-13:]
            if local == want_local and remote == want_remote and inode != "0":
                return int(inode)
    return None


def _owners_of(inodes: set[int]) -> dict[int, int]:
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    found: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            if target in wanted:
                found[wanted[target]] = int(entry.name)
        if len(found) == len(wanted):
            break
    return found


@dataclass
class CallLog:
    calls: list[Call] = field(default_factory=list)
    _owners: dict[int, int] = field(default_factory=dict)  # socket inode -> pid
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def owner(self, client: tuple[str, int] | None, server: tuple[str, int] | None) -> int | None:
        if not client or not server:
            return None
        inode = _socket_inode(client[1], server[1])
        if inode is None:
            return None
        with self._lock:
            if inode in self._owners:
                return self._owners[inode]
        owners = _owners_of({inode})
        with self._lock:
            self._owners.update(owners)
        return owners.get(inode)

    def wrap(self, app: Any, vendor: str) -> Any:
        log = self

        async def recorded(scope, receive, send):
            if scope["type"] != "http" or scope.get("path", "").startswith("/_sandbox"):
                await app(scope, receive, send)
                return
            started = time.time()
            pid = await asyncio.to_thread(log.owner, scope.get("client"), scope.get("server"))
            status: dict[str, int] = {}

            async def send_status(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                call = Call(vendor, pid, started, time.time(), scope["method"], scope["path"], status.get("code"))
                with log._lock:
                    log.calls.append(call)

        recorded.state = app.state  # SandboxServer reads app.state.sandbox
        return recorded

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)


def overlapping_streams(calls: list[Call]) -> list[tuple[Call, Call]]:
    """Pairs of calls to one vendor from two different processes that were in flight at the
    same time."""
    overlaps = []
    by_vendor: dict[str, list[Call]] = {}
    for call in calls:
        by_vendor.setdefault(call.vendor, []).append(call)
    for vendor_calls in by_vendor.values():
        vendor_calls.sort(key=lambda c: c.started)
        active: list[Call] = []
        for call in vendor_calls:
            active = [a for a in active if a.ended > call.started]
            overlaps.extend((a, call) for a in active if a.pid != call.pid)
            active.append(call)
    return overlaps
