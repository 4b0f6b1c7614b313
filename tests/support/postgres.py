"""A throwaway PostgreSQL server for tests: initdb into a temp dir, pg_ctl on a free loopback
port, stopped and deleted afterwards. As root, the server runs as the ``postgres`` user."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


def _bindir() -> Path:
    for candidate in ("pg_ctl", "initdb"):
        found = shutil.which(candidate)
        if found:
            return Path(os.path.realpath(found)).parent
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        path = Path(out.stdout.strip())
        if (path / "pg_ctl").exists():
            return path
    except (FileNotFoundError, subprocess.CalledProcessError):
        pass
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if versions:
        return versions[0]
    raise RuntimeError("PostgreSQL binaries not found (install the postgresql package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    db: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _bindir()
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="ts-pg-"))
    data = base / "data"
    password = "pw-" + os.urandom(6).hex()
    pwfile = base / "pwfile"
    pwfile.write_text(password)

    def run(*args: str) -> None:
        cmd = [str(bindir / args[0]), *args[1:]]
        if as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True)

    if as_root:
        subprocess.run(["chown", "-R", "postgres", str(base)], check=True)
        os.chmod(base, 0o700)
    port = _free_port()
    run("initdb", "-D", str(data), "-U", "dagster", "--auth=md5", f"--pwfile={pwfile}", "-E", "UTF8")
    run(
        "pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60",
        "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    )
    try:
        server = PostgresServer("127.0.0.1", port, "dagster", password, "postgres")
        yield server
    finally:
        try:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(base, ignore_errors=True)
