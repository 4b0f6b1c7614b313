"""A strict local fake of the iBuildApp Timesheets API (the parts this pipeline uses).

Served: ``POST /api/{APP_CODE}/login`` (the path the client defaults to), ``ts/search``,
``project/search``, ``user`` (the logged-in account or one user, with ``roles``),
``user/search`` and ``user/history`` (``last_update``, ``NOT-MODIFIED``, ``timestamp``), all under
``/api/{APP_CODE}/``; ``{app_path}`` in the doc is the same app code. Everything else answers 404
with the vendor's error body.

Strict where the doc is specific: bearer token on every call (the documented 401 body with
``error_code`` 9), only the documented request parameters with their types, ``with`` values
from the documented lists, ``limit``/``offset`` paging with ``count``, side tables keyed by
id strings holding only the records the page refers to. Where the doc is silent the fake
picks the stricter reading and the client tolerates the others (see the client's docstring):
``limit`` defaults to 10 (as documented for the other searches) and is silently capped at
``max_page_size``; ``end_datetime`` is inclusive and both bounds apply to ``start_time``.
Time entries keep ``created``/``updated`` stamps (``IBuildAppState.stamps``), shown by
``user/history`` only, as the doc's ``ts/search`` example shows none.

Test knobs on ``app.state.sandbox.extra``: ``state`` (the data, mutable), ``scripted_errors``
(``status: ERROR`` bodies served once each, with any HTTP status), ``auth_error_status``
(HTTP status of the "token incorrect" answer; the real service is documented with 401 but
may send the envelope under 200), ``transform_response`` (test-only, ``None`` by default: a
callable ``(endpoint, params, body) -> body`` applied to every successful search answer, to
serve records or pages the generator never produces — drifting, mistyped, malformed — or to
change the data between two pages of one walk). Readings the doc leaves open, each a knob:
``account`` (the logged-in user and its ``roles``; ``non_admin_account`` logs in as a plain
user, who sees only its own entries) and ``admin_roles`` (the roles the server answers as an
administrator), ``window_reading`` (``"start"``: both bounds apply to
``start_time``; ``"entry"``: ``end_datetime`` bounds the entry's end), ``history_reading``
(``"changed"``: ``user/history`` serves the entries stamped since ``last_update``; ``"all"``:
the user's whole history once anything changed) and ``history_times`` (``"epoch"``, or
``"text"``: ``"YYYY-MM-DD HH:MM:SS"`` in server-local UTC+3 as the doc's history example).
``extra["mutations"]`` is the ``SourceMutations`` of the data (``IBuildAppMutations``).
"""

from __future__ import annotations

import json
import threading
import time as clock
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...sandbox.data import SandboxConfig, person_name, project_name, quarter_hours
from ...sandbox.framework import RateRule, Sandbox, build_app
from ...sandbox.tokens import bearer_token

SANDBOX_APP_CODE = "tsdemo"
SANDBOX_EMAIL = "pipeline@sandbox.ibuildapp.test"
SANDBOX_PASSWORD = "sandbox-Password-2024"
DEFAULT_LIMIT = 10
AUTH_MESSAGE = "Auth token not specified or incorrect."
FORBIDDEN_MESSAGE = "Forbidden -- The entry requested is hidden for administrators only."
ADMIN_ACCOUNT = {
    "id": 900,
    "email": SANDBOX_EMAIL,
    "first_name": "Pipeline",
    "last_name": "Admin",
    "roles": ["ROLE_USER", "ROLE_ADMIN"],
}
# user/history text times: server-local, three hours ahead of UTC as in the doc's example.
HISTORY_TEXT_OFFSET = timedelta(hours=3)

TASK_NAMES = ("Site work", "Design", "Inspection", "Framing", "Electrical", "Commissioning")
PROJECT_STATUSES = ("new", "in-progress", "in-progress", "in-progress", "done", "cancelled")
CLIENT_NAMES = ("Bank West", "Harbour Board", "City Works", "North Utilities", "Kestrel Homes")

TS_SEARCH_PARAMS: Mapping[str, str] = {
    "time_entry_ids": "int_list",
    "task_id": "int",
    "user_id": "int",
    "project_id": "int",
    "payment_status": "payment_status",
    "start_datetime": "int",
    "end_datetime": "int",
    "status": "entry_status",
    "keywords": "str",
    "limit": "limit",
    "offset": "offset",
    "with": "with",
}
PROJECT_SEARCH_PARAMS: Mapping[str, str] = {
    "client_id": "int",
    "name": "str",
    "category": "str",
    "description": "str",
    "keyword": "str",
    "duration_unit": "duration_unit",
    "status": "project_status",
    "limit": "limit",
    "offset": "offset",
    "with": "with",
}
ENUMS: Mapping[str, tuple[str, ...]] = {
    "entry_status": ("in-progress", "rejected", "approved"),
    "payment_status": ("pending", "payed"),
    "project_status": ("new", "in-progress", "cancelled", "done"),
    "duration_unit": ("minutes", "hours", "days", "weeks", "months", "years"),
}
USER_PARAMS: Mapping[str, str] = {"user_id": "int"}
USER_SEARCH_PARAMS: Mapping[str, str] = {
    "user_id": "int",
    "email": "str",
    "first_name": "str",
    "last_name": "str",
    "position": "str",
    "is_active": "bool",
    "limit": "limit",
    "offset": "offset",
}
USER_HISTORY_PARAMS: Mapping[str, str] = {
    "user_id": "int",
    "last_update": "int",
    "with": "with",
    "filters": "object",
    "sorts": "object",
}
WITH_VALUES: Mapping[str, tuple[str, ...]] = {
    "ts/search": ("users", "tasks", "projects"),
    "project/search": ("tasks", "clients"),
    "user/history": ("users", "tasks", "projects"),
}


# -- data ------------------------------------------------------------------------------------
def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass
class IBuildAppState:
    """The sandbox's records, as the API serves them (dicts keyed like the payloads)."""

    users: dict[int, dict[str, Any]]
    clients: dict[int, dict[str, Any]]
    projects: dict[int, dict[str, Any]]
    tasks: dict[int, dict[str, Any]]
    entries: dict[int, dict[str, Any]]
    # Epoch seconds the generated data is stamped with (a day before it was built, so a
    # pipeline's first scan never sees it as new); entries changed since carry their own.
    generated_at: int = field(default_factory=lambda: int(clock.time()) - 86400)
    # entry id -> {"created": epoch, "updated": epoch}, for entries created or changed after
    # generation (user/history serves them; ts/search does not show stamps).
    stamps: dict[int, dict[str, int]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def entry_stamps(self, entry: Mapping[str, Any]) -> dict[str, int]:
        own = self.stamps.get(entry["id"])
        if own is not None:
            return dict(own)
        created = min(int(entry.get("end_time") or entry["start_time"]), self.generated_at)
        updated = min(max(created, int(entry.get("approve_date") or 0)), self.generated_at)
        return {"created": created, "updated": updated}


def build_state(config: SandboxConfig) -> IBuildAppState:
    """Deterministic data from ``config``: entries spread over ``first_date..anchor_date``."""
    state, entries = stream_state(config)
    state.entries.update((entry["id"], entry) for entry in entries)
    return state


def stream_state(config: SandboxConfig) -> tuple[IBuildAppState, Iterator[dict[str, Any]]]:
    """The reference data (users, clients, projects, tasks) and a generator of the time entries
    in id order, so that millions of entries can be produced without holding them (the
    benchmarks). Draining the generator yields exactly the entries of ``build_state``; each
    entry also updates its task's ``duration`` and ``users`` as it is produced."""
    rng = config.rng("ibuildapp")
    users: dict[int, dict[str, Any]] = {}
    for uid in range(1, config.employees + 1):
        first, last = person_name(rng)
        users[uid] = {
            "id": uid,
            "email": f"{first.lower()}.{last.lower()}{uid}@example.test",
            "first_name": first,
            "last_name": last,
            "hourly_rate": float(rng.choice((25, 32.5, 40, 55))),
            "picture": f"https://cdn.example.test/avatars/{uid}.png",
            "birth_date": f"19{rng.randint(60, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        }
    client_count = max(1, min(len(CLIENT_NAMES), (config.projects + 2) // 3))
    clients: dict[int, dict[str, Any]] = {
        cid: {"id": cid, "name": CLIENT_NAMES[cid - 1], "status": "active", "projects": []}
        for cid in range(1, client_count + 1)
    }
    projects: dict[int, dict[str, Any]] = {}
    tasks: dict[int, dict[str, Any]] = {}
    next_task = 1
    start_base = _midnight_utc(config.first_date - timedelta(days=60))
    for pid in range(1, config.projects + 1):
        cid = rng.randint(1, client_count)
        status = rng.choice(PROJECT_STATUSES)
        planned_start = start_base + timedelta(days=rng.randint(0, 40))
        planned_end = planned_start + timedelta(days=rng.randint(60, 240))
        task_ids = []
        for _ in range(rng.randint(1, 4)):
            tasks[next_task] = {
                "id": next_task,
                "name": f"{rng.choice(TASK_NAMES)} {next_task}",
                "project": pid,
                "duration": 0,
                "status": rng.choice(("new", "in-progress", "done")),
                "users": [],
            }
            task_ids.append(next_task)
            next_task += 1
        projects[pid] = {
            "id": pid,
            "name": project_name(rng, pid),
            "description": f"Project {pid} for {clients[cid]['name']}",
            "client_id": cid,
            "duration_unit": "hours",
            "status": status,
            "planned_start_date": _epoch(planned_start),
            "actual_start_date": _epoch(planned_start + timedelta(days=rng.randint(0, 5))) if status != "new" else 0,
            "planned_end_date": _epoch(planned_end),
            "actual_end_date": _epoch(planned_end) if status == "done" else 0,
            "estimated_duration": float(rng.randint(200, 2000)),
            "actual_duration": 0.0,
            "tasks": task_ids,
        }
        clients[cid]["projects"].append(pid)
    state = IBuildAppState(users, clients, projects, tasks, {})
    return state, _generate_entries(config, rng, tasks)


def _generate_entries(config: SandboxConfig, rng: Any, tasks: dict[int, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    task_ids = list(tasks)
    # Statuses have their own stream: which entries are approved does not shift with how many
    # draws an entry's placement took.
    status_rng = config.rng("ibuildapp:status")
    # Each employee's day fills from 06:00 with back-to-back entries and a short gap between
    # them, so a day never holds more hours than it has (up to 22:00 when the data is dense).
    day_cursor: dict[tuple[int, date], datetime] = {}
    latest_end = timedelta(hours=22)
    for eid in range(1, config.time_records + 1):
        for _attempt in range(20):
            uid = rng.randint(1, config.employees)
            day = config.first_date + timedelta(days=rng.randrange(config.days))
            cursor = day_cursor.get((uid, day), _midnight_utc(day) + timedelta(hours=6))
            seconds = int(quarter_hours(rng, 0.5, 4.0) * 3600)
            if cursor + timedelta(seconds=seconds) <= _midnight_utc(day) + latest_end:
                break
        else:
            # Denser than employees x days can hold: a short entry, still on the drawn day.
            seconds = 900
            cursor = min(cursor, _midnight_utc(day) + timedelta(hours=23, minutes=45))
        tid = rng.choice(task_ids)
        start = cursor
        day_cursor[(uid, day)] = start + timedelta(seconds=seconds + 15 * 60)
        roll = status_rng.random()
        status = "approved" if roll < 0.6 else "in-progress" if roll < 0.85 else "rejected"
        payment = "payed" if status == "approved" and status_rng.random() < 0.3 else "pending"
        entry: dict[str, Any] = {
            "id": eid,
            "user_id": uid,
            "task_id": tid,
            "start_time": _epoch(start),
            "end_time": _epoch(start + timedelta(seconds=seconds)),
            "approve_date": _epoch(start + timedelta(days=2)) if status != "in-progress" else None,
            "breaks": rng.choice((0, 0, 0, 1, 2)),
            "comments": rng.choice((0, 0, 1, 3)),
            "duration": seconds,
            "status": status,
            "payment_status": payment,
            "start_location": [round(rng.uniform(30, 45), 6), round(rng.uniform(-120, -75), 6)],
            "end_location": [round(rng.uniform(30, 45), 6), round(rng.uniform(-120, -75), 6)],
        }
        if entry["approve_date"] is None:
            del entry["approve_date"]
        if status == "in-progress" and day == config.anchor_date and rng.random() < 0.5:
            # Still running: no end yet; duration is what has been tracked so far.
            del entry["end_time"]
        yield entry
        task = tasks[tid]
        task["duration"] += seconds
        if uid not in task["users"]:
            task["users"].append(uid)


def state_of(app: Starlette) -> IBuildAppState:
    return app.state.sandbox.extra["state"]


def entry_work_date(entry: Mapping[str, Any]) -> date:
    return datetime.fromtimestamp(entry["start_time"], tz=UTC).date()


def expected_timesheets(config: SandboxConfig, first: date, last: date) -> dict[str, Any]:
    """Lines and hours ``conformed/timesheets`` must hold for work dates ``first..last``
    (work date = UTC day of ``start_time``, the resource's default timezone)."""
    state = build_state(config)
    chosen = [e for e in state.entries.values() if first <= entry_work_date(e) <= last]
    return {
        "lines": len(chosen),
        "total_hours": round(sum(e["duration"] for e in chosen) / 3600.0, 6),
    }


def expected_projects(config: SandboxConfig) -> int:
    return config.projects


def sandbox_env(base_url: str) -> dict[str, str]:
    """The resource's environment for this sandbox (login flow; ``IBUILDAPP_TOKEN`` is the
    alternative to e-mail + password and is left unset)."""
    return {
        "IBUILDAPP_BASE_URL": base_url,
        "IBUILDAPP_APP_CODE": SANDBOX_APP_CODE,
        "IBUILDAPP_EMAIL": SANDBOX_EMAIL,
        "IBUILDAPP_PASSWORD": SANDBOX_PASSWORD,
        # The sandbox's people work on UTC days (its data fills each day from 06:00 UTC).
        "IBUILDAPP_TIMEZONE": "UTC",
    }


def approve_pending(state: IBuildAppState, fraction: float, seed: int = 7) -> int:
    """Approve a share of the in-progress entries (what happens to last week's hours)."""
    import random

    rng = random.Random(seed)
    with state.lock:
        pending = [e for e in state.entries.values() if e.get("status") == "in-progress"]
        chosen = rng.sample(pending, min(len(pending), max(1, round(len(state.entries) * fraction))))
        now = int(clock.time())
        for entry in chosen:
            entry["status"] = "approved"
            entry["approve_date"] = entry["start_time"] + 86400
            entry.setdefault("end_time", entry["start_time"] + int(entry["duration"]))
            _stamp(state, entry["id"], now)
    return len(chosen)


def _stamp(state: IBuildAppState, entry_id: int, now: int, *, created: bool = False) -> None:
    stamps = state.stamps.setdefault(entry_id, state.entry_stamps(state.entries[entry_id]))
    stamps["updated"] = now
    if created:
        stamps["created"] = now


# -- what the API's write calls do (ts/update, ts/approve, ts/delete, ts/create) ----------------
def update_time_entry(
    state: IBuildAppState,
    entry_id: int,
    *,
    start_datetime: int | None = None,
    end_datetime: int | None = None,
    now: int | None = None,
) -> None:
    """``ts/update``: new start and/or end; the duration follows them (this sandbox's durations
    are the span)."""
    with state.lock:
        entry = state.entries[entry_id]
        if start_datetime is not None:
            entry["start_time"] = int(start_datetime)
        if end_datetime is not None:
            entry["end_time"] = int(end_datetime)
        if entry.get("end_time") is not None:
            entry["duration"] = int(entry["end_time"]) - int(entry["start_time"])
        _stamp(state, entry_id, int(now if now is not None else clock.time()))


def approve_time_entries(state: IBuildAppState, entry_ids: Iterable[int], now: int | None = None) -> list[int]:
    """``ts/approve``: approved, ``approve_date`` now."""
    moment = int(now if now is not None else clock.time())
    with state.lock:
        approved = [i for i in entry_ids if i in state.entries]
        for entry_id in approved:
            state.entries[entry_id]["status"] = "approved"
            state.entries[entry_id]["approve_date"] = moment
            _stamp(state, entry_id, moment)
    return approved


def delete_time_entry(state: IBuildAppState, entry_id: int) -> None:
    """``ts/delete``: the entry is gone from every answer."""
    with state.lock:
        del state.entries[entry_id]
        state.stamps.pop(entry_id, None)


def create_time_entry(
    state: IBuildAppState, user_id: int, task_id: int, start_time: int, end_time: int, now: int | None = None
) -> int:
    """``ts/create``: a finished entry awaiting approval; returns its id."""
    with state.lock:
        entry_id = max(state.entries, default=0) + 1
        state.entries[entry_id] = {
            "id": entry_id,
            "user_id": user_id,
            "task_id": task_id,
            "start_time": int(start_time),
            "end_time": int(end_time),
            "breaks": 0,
            "comments": 0,
            "duration": int(end_time) - int(start_time),
            "status": "in-progress",
            "payment_status": "pending",
        }
        _stamp(state, entry_id, int(now if now is not None else clock.time()), created=True)
        task = state.tasks.get(task_id)
        if task is not None and user_id not in task["users"]:
            task["users"].append(user_id)
    return entry_id


class IBuildAppMutations:
    """``SourceMutations`` on iBuildApp time entries, through what the API's write calls allow:
    ``ts/update`` (start and end times: hours and the day), ``ts/approve``, ``ts/delete`` and
    ``ts/create``. Each stamps the entry's ``updated`` (``user/history`` shows it); an entry
    keeps its id when its start moves to another day. Work dates are UTC days (the sandbox's
    ``IBUILDAPP_TIMEZONE``)."""

    def __init__(self, state: IBuildAppState) -> None:
        self.state = state

    def entry_keys(self, first: date, last: date) -> list[str]:
        with self.state.lock:
            return [str(i) for i, e in sorted(self.state.entries.items()) if first <= entry_work_date(e) <= last]

    def edit_hours(self, key: str, delta: float) -> None:
        with self.state.lock:
            entry = self.state.entries[int(key)]
            end = entry.get("end_time") or entry["start_time"] + int(entry.get("duration") or 0)
            update_time_entry(self.state, int(key), end_datetime=int(end + round(delta * 3600)))

    def move(self, key: str, day: date) -> str:
        with self.state.lock:
            entry = self.state.entries[int(key)]
            shift = int((_midnight_utc(day) - _midnight_utc(entry_work_date(entry))).total_seconds())
            end = entry.get("end_time")
            update_time_entry(
                self.state,
                int(key),
                start_datetime=entry["start_time"] + shift,
                end_datetime=end + shift if end is not None else None,
            )
        return key

    def approve(self, key: str) -> None:
        approve_time_entries(self.state, [int(key)])

    def delete(self, key: str) -> None:
        delete_time_entry(self.state, int(key))

    def add_late(self, day: date) -> str:
        with self.state.lock:
            user_id = min(self.state.users)
            task_id = min(self.state.tasks)
        start = _epoch(_midnight_utc(day) + timedelta(hours=5))
        return str(create_time_entry(self.state, user_id, task_id, start, start + 2 * 3600 + 900))

    def expected_lines(self, first: date, last: date) -> pd.DataFrame:
        from .conform import entry_status

        with self.state.lock:
            chosen = [e for _, e in sorted(self.state.entries.items()) if first <= entry_work_date(e) <= last]
            seconds = [
                float(e["duration"])
                if e.get("duration") is not None
                else float(e["end_time"] - e["start_time"])
                if e.get("end_time")
                else 0.0
                for e in chosen
            ]
            status = entry_status(
                pd.Series([e.get("status") for e in chosen], dtype="object"),
                pd.Series([e.get("end_time") for e in chosen], dtype="object"),
            )
            return pd.DataFrame(
                {
                    "entry_id": [str(e["id"]) for e in chosen],
                    "work_date": [entry_work_date(e) for e in chosen],
                    "total_hours": [round(x / 3600.0, 6) for x in seconds],
                    "status": list(status),
                },
                columns=["entry_id", "work_date", "total_hours", "status"],
            )


def non_admin_account(state: IBuildAppState, user_id: int) -> dict[str, Any]:
    """The ``account`` knob for logging in as the plain user ``user_id`` (``ROLE_USER`` only)."""
    user = state.users[user_id]
    return {**{k: user[k] for k in ("id", "email", "first_name", "last_name")}, "roles": ["ROLE_USER"]}


def is_admin_account(account: Mapping[str, Any], admin_roles: Iterable[str]) -> bool:
    """Whether the server answers this account as an administrator (its ``admin_roles`` knob)."""
    names = {str(name).upper() for name in admin_roles}
    return any(str(role).upper() in names for role in account.get("roles") or ())


# -- HTTP ------------------------------------------------------------------------------------
def _error(message: str, status: int, error_code: int | None = None, headers=None) -> JSONResponse:
    body: dict[str, Any] = {"status": "ERROR", "message": message}
    if error_code is not None:
        body["error_code"] = error_code
    return JSONResponse(body, status_code=status, headers=headers)


_STATUS_MESSAGES = {
    429: "Too Many Requests -- You're sending too many requests.",
    500: "Internal Server Error -- We had a problem with our server. Try again later.",
    502: "Bad Gateway.",
    503: "Service Unavailable -- We're temporarily offline for maintenance. Please try again later.",
    504: "Gateway Timeout.",
}


def vendor_error(kind: str, status: int, wait: float | None, retry_after: str | None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after else None
    return _error(_STATUS_MESSAGES.get(status, f"HTTP {status}"), status, headers=headers)


class _BadRequest(Exception):
    pass


def _validate(params: Mapping[str, Any], allowed: Mapping[str, str], endpoint: str) -> None:
    for name, value in params.items():
        kind = allowed.get(name)
        if kind is None:
            raise _BadRequest(f"Unknown parameter '{name}'.")
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if kind == "int" and not is_int:
            raise _BadRequest(f"Parameter '{name}' must be an integer.")
        if kind == "limit" and not (is_int and value >= 1):
            raise _BadRequest("Parameter 'limit' must be a positive integer.")
        if kind == "offset" and not (is_int and value >= 0):
            raise _BadRequest("Parameter 'offset' must be a non-negative integer.")
        if kind == "str" and not isinstance(value, str):
            raise _BadRequest(f"Parameter '{name}' must be a string.")
        if kind == "bool" and not isinstance(value, bool):
            raise _BadRequest(f"Parameter '{name}' must be a boolean.")
        if kind == "object" and not isinstance(value, dict):
            raise _BadRequest(f"Parameter '{name}' must be an object.")
        if kind == "int_list" and not (
            isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise _BadRequest(f"Parameter '{name}' must be an array of integers.")
        if kind in ENUMS and value not in ENUMS[kind]:
            raise _BadRequest(f"Parameter '{name}' must be one of: {', '.join(ENUMS[kind])}.")
        if kind == "with":
            choices = WITH_VALUES[endpoint]
            if not (isinstance(value, list) and all(v in choices for v in value)):
                raise _BadRequest(f"Parameter 'with' must be an array from: {', '.join(choices)}.")


def ts_search_body(
    state: IBuildAppState, entries: Iterable[Mapping[str, Any]], count: int, wanted_tables: Iterable[str]
) -> dict[str, Any]:
    """One ``ts/search`` answer: ``entries`` (the page, already filtered and sliced) with the
    side tables they refer to, and ``count`` (matches of the whole search). Copies are served,
    so later edits of ``state`` do not change an answer already built. Also used by the
    processing benchmark to pre-record pages in exactly the shape served here."""
    chosen = [json.loads(json.dumps(e)) for e in entries]
    data: dict[str, Any] = {"time_entries": chosen}
    wanted_tables = list(wanted_tables)
    task_ids = {e.get("task_id") for e in chosen}
    if "users" in wanted_tables:
        data["users"] = _keyed(state.users, (e.get("user_id") for e in chosen))
    if "tasks" in wanted_tables:
        data["tasks"] = _keyed(state.tasks, task_ids)
    if "projects" in wanted_tables:
        data["projects"] = _keyed(state.projects, (state.tasks.get(t, {}).get("project") for t in task_ids))
    return {
        "status": "SUCCESS",
        "message": f"{count} time entries found.",
        "data": data,
        "count": count,
    }


def render(body: Any) -> bytes:
    """The bytes the sandbox sends for ``body`` (Starlette's ``JSONResponse`` rendering)."""
    return bytes(JSONResponse(body).body)


def create_app(
    config: SandboxConfig,
    *,
    max_page_size: int = 1000,
    requests_per_second: int | None = None,
) -> Starlette:
    """The sandbox app. ``requests_per_second`` turns on a limit the vendor does not document
    (429 beyond it) so runs can show they stay under their own configured rate."""
    rule = (
        RateRule(max_requests=requests_per_second, window_seconds=1.0, mode="reject") if requests_per_second else None
    )
    sandbox = Sandbox(name="ibuildapp", rate_rule=rule, error=vendor_error)
    state = build_state(config)
    sandbox.extra.update(
        state=state,
        scripted_errors=[],
        auth_error_status=401,
        transform_response=None,
        app_code=SANDBOX_APP_CODE,
        email=SANDBOX_EMAIL,
        password=SANDBOX_PASSWORD,
        account=dict(ADMIN_ACCOUNT),
        admin_roles=["ROLE_ADMIN", "ROLE_SUPER_ADMIN"],
        window_reading="start",
        history_reading="changed",
        history_times="epoch",
        mutations=IBuildAppMutations(state),
    )

    async def read_json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _BadRequest("Request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise _BadRequest("Request body must be a JSON object.")
        return body

    def wrong_app(request: Request) -> Response | None:
        if request.path_params["app"] != sandbox.extra["app_code"]:
            return _error("Application not found.", 404, 5)
        return None

    def unauthorized() -> Response:
        return _error(AUTH_MESSAGE, int(sandbox.extra["auth_error_status"]), 9)

    def scripted(path: str) -> Response | None:
        queue: list[dict[str, Any]] = sandbox.extra["scripted_errors"]
        for index, item in enumerate(queue):
            if item.get("path_contains") and item["path_contains"] not in path:
                continue
            queue.pop(index)
            return _error(item["message"], int(item.get("http_status", 200)), item.get("error_code"))
        return None

    async def login(request: Request) -> Response:
        if (bad := wrong_app(request)) is not None:
            return bad
        try:
            body = await read_json(request)
        except _BadRequest as exc:
            return _error(str(exc), 400)
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            return _error("Parameters 'email' and 'password' are required.", 400)
        if email != sandbox.extra["email"] or password != sandbox.extra["password"]:
            return _error(f"Incorrect e-mail or password for {email}.", 401, 9)
        issued = sandbox.tokens.issue(email)
        return JSONResponse({"status": "SUCCESS", "message": "Successfully authorized.", "token": issued.token})

    def account() -> dict[str, Any]:
        return sandbox.extra["account"]

    def forbidden_other_user(params: Mapping[str, Any]) -> bool:
        """A plain user asking for someone else's data."""
        own = account().get("id")
        if is_admin_account(account(), sandbox.extra["admin_roles"]):
            return False
        return "user_id" in params and params["user_id"] != own

    def api(endpoint: str, allowed: Mapping[str, str], handler: Callable[[dict[str, Any]], Any]):
        async def route(request: Request) -> Response:
            if (bad := wrong_app(request)) is not None:
                return bad
            if sandbox.tokens.validate(bearer_token(request.headers)) is None:
                return unauthorized()
            if (injected := scripted(request.url.path)) is not None:
                return injected
            try:
                params = await read_json(request)
                _validate(params, allowed, endpoint)
            except _BadRequest as exc:
                return _error(str(exc), 400)
            if forbidden_other_user(params):
                return _error(FORBIDDEN_MESSAGE, 403)
            body: Any = handler(params)
            if isinstance(body, Response):
                return body
            transform = sandbox.extra.get("transform_response")
            if transform is not None:
                body = transform(endpoint, params, body)
            return JSONResponse(body)

        return route

    def page(params: Mapping[str, Any]) -> tuple[int, int]:
        limit = min(int(params.get("limit", DEFAULT_LIMIT)), max_page_size)
        return int(params.get("offset", 0)), limit

    def ts_search(params: dict[str, Any]) -> dict[str, Any]:
        state: IBuildAppState = sandbox.extra["state"]
        with state.lock:
            rows = sorted(state.entries.values(), key=lambda e: e["id"])
            if not is_admin_account(account(), sandbox.extra["admin_roles"]):
                # "user_id: Optional for admin": a plain user is answered with its own entries.
                rows = [e for e in rows if e.get("user_id") == account().get("id")]
            if "time_entry_ids" in params:
                wanted = set(params["time_entry_ids"])
                rows = [e for e in rows if e["id"] in wanted]
            for key in ("user_id", "task_id", "status", "payment_status"):
                if key in params:
                    rows = [e for e in rows if e.get(key) == params[key]]
            if "project_id" in params:
                rows = [
                    e for e in rows if state.tasks.get(e.get("task_id") or 0, {}).get("project") == params["project_id"]
                ]
            if "start_datetime" in params:
                rows = [e for e in rows if e["start_time"] >= params["start_datetime"]]
            if "end_datetime" in params:
                if sandbox.extra["window_reading"] == "entry":
                    # end_datetime bounds the entry's end (a running entry's start).
                    rows = [e for e in rows if (e.get("end_time") or e["start_time"]) <= params["end_datetime"]]
                else:
                    rows = [e for e in rows if e["start_time"] <= params["end_datetime"]]
            offset, limit = page(params)
            return ts_search_body(state, rows[offset : offset + limit], len(rows), params.get("with", []))

    def project_search(params: dict[str, Any]) -> dict[str, Any]:
        state: IBuildAppState = sandbox.extra["state"]
        with state.lock:
            rows = sorted(state.projects.values(), key=lambda p: p["id"])
            for key in ("client_id", "status", "duration_unit", "category"):
                if key in params:
                    rows = [p for p in rows if p.get(key) == params[key]]
            for key in ("name", "description"):
                if key in params:
                    rows = [p for p in rows if params[key].lower() in str(p.get(key, "")).lower()]
            if "keyword" in params:
                needle = params["keyword"].lower()
                rows = [
                    p
                    for p in rows
                    if any(needle in str(p.get(k, "")).lower() for k in ("name", "description", "category"))
                ]
            offset, limit = page(params)
            chosen = [json.loads(json.dumps(p)) for p in rows[offset : offset + limit]]
            data: dict[str, Any] = {"projects": chosen}
            wanted_tables = params.get("with", [])
            if "tasks" in wanted_tables:
                data["tasks"] = {
                    str(t["id"]): {k: t[k] for k in ("id", "name", "duration", "status", "users")}
                    for p in chosen
                    for t in (state.tasks[i] for i in p.get("tasks", []) if i in state.tasks)
                }
            if "clients" in wanted_tables:
                data["clients"] = {
                    str(c["id"]): {k: c[k] for k in ("id", "name", "status")}
                    for c in (state.clients.get(p.get("client_id")) for p in chosen)
                    if c is not None
                }
        return {
            "status": "SUCCESS",
            "message": f"{len(rows)} project(s) found.",
            "data": data,
            "count": len(rows),
        }

    def user_object(user: Mapping[str, Any]) -> dict[str, Any]:
        """A user "with all fields", as ``POST user`` answers it."""
        acc = account()
        stamp = sandbox.extra["state"].generated_at
        body = {
            "id": user["id"],
            "email": user.get("email"),
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
            "hourly_rate": user.get("hourly_rate", 0),
            "roles": ["ROLE_USER"],
            "created": stamp,
            "updated": stamp,
            "activated": True,
            "settings": [],
            "picture": user.get("picture"),
            "paid_hours": 0,
            "unapproved_hours": 0,
            "teams": [],
            "birth_date": user.get("birth_date"),
        }
        if user["id"] == acc.get("id"):
            body.pop("roles")
            if "roles" in acc:  # a variant may answer without roles
                body["roles"] = list(acc["roles"])
        return json.loads(json.dumps(body))

    def people() -> dict[int, Mapping[str, Any]]:
        acc = account()
        everyone: dict[int, Mapping[str, Any]] = dict(sandbox.extra["state"].users)
        everyone.setdefault(acc["id"], acc)
        return everyone

    def user_info(params: dict[str, Any]) -> Any:
        wanted = params.get("user_id", account()["id"])
        found = people().get(wanted)
        if found is None:
            return _error("User not found.", 404, 5)
        return {"status": "SUCCESS", "data": user_object(found)}

    def user_search(params: dict[str, Any]) -> dict[str, Any]:
        rows = sorted(people().values(), key=lambda u: u["id"])
        if not is_admin_account(account(), sandbox.extra["admin_roles"]):
            rows = [u for u in rows if u["id"] == account()["id"]]
        if "user_id" in params:
            rows = [u for u in rows if u["id"] == params["user_id"]]
        for key in ("email", "first_name", "last_name"):
            if key in params:
                rows = [u for u in rows if params[key].lower() in str(u.get(key, "")).lower()]
        offset, limit = page(params)
        fields = ("id", "email", "first_name", "last_name")
        chosen = [{k: u.get(k) for k in fields} for u in rows[offset : offset + limit]]
        return {"status": "SUCCESS", "message": f"{len(rows)} user(s) found.", "data": chosen, "count": len(rows)}

    def history_time(value: Any) -> Any:
        if sandbox.extra["history_times"] != "text" or not isinstance(value, int) or not value:
            return value
        local = datetime.fromtimestamp(value, tz=UTC) + HISTORY_TEXT_OFFSET
        return local.strftime("%Y-%m-%d %H:%M:%S")

    def user_history(params: dict[str, Any]) -> dict[str, Any]:
        state: IBuildAppState = sandbox.extra["state"]
        user_id = params.get("user_id", account()["id"])
        since = int(params.get("last_update", 0))
        now = int(clock.time())
        with state.lock:
            own = [e for _, e in sorted(state.entries.items()) if e.get("user_id") == user_id]
            stamped = [(e, state.entry_stamps(e)) for e in own]
        changed = [(e, st) for e, st in stamped if st["updated"] > since or st["created"] > since]
        if not changed:
            return {"status": "NOT-MODIFIED", "message": "Data has not been modified.", "timestamp": now}
        served = changed if sandbox.extra["history_reading"] == "changed" else stamped
        entries = []
        for entry, stamps in served:
            item = {**json.loads(json.dumps(entry)), **stamps}
            for name in ("start_time", "end_time", "approve_date", "created", "updated"):
                if name in item:
                    item[name] = history_time(item[name])
            entries.append(item)
        return {
            "status": "SUCCESS",
            "message": f"{len(entries)} time entries found.",
            "data": {"time_entries": entries},
            "count": len(entries),
            "timestamp": now,
        }

    async def not_found(request: Request) -> Response:
        if request.method != "POST":
            return _error("Method Not Allowed.", 405)
        return _error("Not found.", 404, 5)

    routes = [
        Route("/api/{app}/login", login, methods=["POST"]),
        Route("/api/{app}/ts/search", api("ts/search", TS_SEARCH_PARAMS, ts_search), methods=["POST"]),
        Route(
            "/api/{app}/project/search",
            api("project/search", PROJECT_SEARCH_PARAMS, project_search),
            methods=["POST"],
        ),
        Route("/api/{app}/user", api("user", USER_PARAMS, user_info), methods=["POST"]),
        Route("/api/{app}/user/search", api("user/search", USER_SEARCH_PARAMS, user_search), methods=["POST"]),
        Route("/api/{app}/user/history", api("user/history", USER_HISTORY_PARAMS, user_history), methods=["POST"]),
        Route("/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return build_app(sandbox, routes)


def _keyed(table: Mapping[int, dict[str, Any]], ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
    return {str(i): json.loads(json.dumps(table[i])) for i in sorted({i for i in ids if i in table})}
