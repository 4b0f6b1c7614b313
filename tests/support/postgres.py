"""A throwaway PostgreSQL server for tests: initdb into a temp dir, pg_ctl on a free loopback
port, stopped and deleted afterwards. As root, the server runs as the ``postgres`` user."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


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

    def url(self, db: str) -> str:
        """A warehouse URL for ``db`` without the password (give it through
        ``TIMESHEET_WAREHOUSE_PASSWORD``, as a deployment does)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def connect(self, db: str | None = None, autocommit: bool = False):
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=db or self.db
        )
        conn.autocommit = autocommit
        return conn

    def create_database(self, prefix: str = "warehouse") -> str:
        name = f"{prefix}_{os.urandom(5).hex()}"
        conn = self.connect(autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

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
def postgres_server(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """``settings``: extra server settings (``-c name=value``)."""
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
    extra = "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    run("initdb", "-D", str(data), "-U", "dagster", "--auth=md5", f"--pwfile={pwfile}", "-E", "UTF8")
    run(
        "pg_ctl",
        "-D",
        str(data),
        "-l",
        str(base / "log"),
        "-w",
        "-t",
        "60",
        "-o",
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off{extra}",
        "start",
    )
    try:
        server = PostgresServer("127.0.0.1", port, "dagster", password, "postgres")
        yield server
    finally:
        try:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(base, ignore_errors=True)


_SHARED: list = []
_SHARED_LOCK = threading.Lock()


def shared_postgres_server() -> PostgresServer:
    """One server per test process, started on first use and stopped when the process exits;
    each test takes a database of its own on it (``PostgresServer.create_database``)."""
    with _SHARED_LOCK:
        if not _SHARED:
            # pg_stat_statements: tests read what statements the warehouse writes ran.
            manager = postgres_server({"shared_preload_libraries": "pg_stat_statements"})
            server = manager.__enter__()
            atexit.register(manager.__exit__, None, None, None)
            _SHARED.append(server)
        return _SHARED[0]


WAREHOUSE_BACKENDS = ("duckdb", "postgresql")


def make_warehouse(backend: str, tmp_path: Path, monkeypatch) -> str:
    """A fresh, empty warehouse of ``backend``: a DuckDB file path, or a PostgreSQL URL whose
    password is set in ``TIMESHEET_WAREHOUSE_PASSWORD`` (inherited by subprocesses)."""
    if backend == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    server = shared_postgres_server()
    monkeypatch.setenv("TIMESHEET_WAREHOUSE_PASSWORD", server.password)
    return server.url(server.create_database())
