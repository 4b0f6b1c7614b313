"""A strict local fake of the iBuildApp Timesheets API (the parts this pipeline uses).

Served: ``POST /api/{APP_CODE}/login`` (the path the client defaults to),
``POST /api/{APP_CODE}/ts/search`` and ``POST /api/{APP_CODE}/project/search``; ``{app_path}``
in the doc is the same app code. Everything else answers 404 with the vendor's error body.

Strict where the doc is specific: bearer token on every call (the documented 401 body with
``error_code`` 9), only the documented request parameters with their types, ``with`` values
from the documented lists, ``limit``/``offset`` paging with ``count``, side tables keyed by
id strings holding only the records the page refers to. Where the doc is silent the fake
picks the stricter reading and the client tolerates the others (see the client's docstring):
``limit`` defaults to 10 (as documented for the other searches) and is silently capped at
``max_page_size``; ``end_datetime`` is inclusive and both bounds apply to ``start_time``.

Test knobs on ``app.state.sandbox.extra``: ``state`` (the data, mutable), ``scripted_errors``
(``status: ERROR`` bodies served once each, with any HTTP status), ``auth_error_status``
(HTTP status of the "token incorrect" answer; the real service is documented with 401 but
may send the envelope under 200), ``transform_response`` (test-only, ``None`` by default: a
callable ``(endpoint, params, body) -> body`` applied to every successful search answer, to
serve records or pages the generator never produces — drifting, mistyped, malformed).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

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
WITH_VALUES: Mapping[str, tuple[str, ...]] = {
    "ts/search": ("users", "tasks", "projects"),
    "project/search": ("tasks", "clients"),
}


# -- data ------------------------------------------------------------------------------------
def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


@dataclass
class IBuildAppState:
    """The sandbox's records, as the API serves them (dicts keyed like the payloads)."""

    users: dict[int, dict[str, Any]]
    clients: dict[int, dict[str, Any]]
    projects: dict[int, dict[str, Any]]
    tasks: dict[int, dict[str, Any]]
    entries: dict[int, dict[str, Any]]
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


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
    clients = {
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
            "actual_start_date": _epoch(planned_start + timedelta(days=rng.randint(0, 5)))
            if status != "new"
            else 0,
            "planned_end_date": _epoch(planned_end),
            "actual_end_date": _epoch(planned_end) if status == "done" else 0,
            "estimated_duration": float(rng.randint(200, 2000)),
            "actual_duration": 0.0,
            "tasks": task_ids,
        }
        clients[cid]["projects"].append(pid)
    state = IBuildAppState(users, clients, projects, tasks, {})
    return state, _generate_entries(config, rng, tasks)


def _generate_entries(
    config: SandboxConfig, rng: Any, tasks: dict[int, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    task_ids = list(tasks)
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
        roll = rng.random()
        status = "approved" if roll < 0.6 else "in-progress" if roll < 0.85 else "rejected"
        payment = "payed" if status == "approved" and rng.random() < 0.3 else "pending"
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
    return datetime.fromtimestamp(entry["start_time"], tz=timezone.utc).date()


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
    }


def approve_pending(state: IBuildAppState, fraction: float, seed: int = 7) -> int:
    """Approve a share of the in-progress entries (what happens to last week's hours)."""
    import random

    rng = random.Random(seed)
    with state.lock:
        pending = [e for e in state.entries.values() if e.get("status") == "in-progress"]
        chosen = rng.sample(pending, min(len(pending), max(1, round(len(state.entries) * fraction))))
        for entry in chosen:
            entry["status"] = "approved"
            entry["approve_date"] = entry["start_time"] + 86400
            entry.setdefault("end_time", entry["start_time"] + int(entry["duration"]))
    return len(chosen)


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
    return JSONResponse(body).body


def create_app(
    config: SandboxConfig,
    *,
    max_page_size: int = 1000,
    requests_per_second: int | None = None,
) -> Starlette:
    """The sandbox app. ``requests_per_second`` turns on a limit the vendor does not document
    (429 beyond it) so runs can show they stay under their own configured rate."""
    rule = (
        RateRule(max_requests=requests_per_second, window_seconds=1.0, mode="reject")
        if requests_per_second
        else None
    )
    sandbox = Sandbox(name="ibuildapp", rate_rule=rule, error=vendor_error)
    sandbox.extra.update(
        state=build_state(config),
        scripted_errors=[],
        auth_error_status=401,
        transform_response=None,
        app_code=SANDBOX_APP_CODE,
        email=SANDBOX_EMAIL,
        password=SANDBOX_PASSWORD,
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

    def api(endpoint: str, allowed: Mapping[str, str], handler: Callable[[dict[str, Any]], dict[str, Any]]):
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
            body: Any = handler(params)
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
            if "time_entry_ids" in params:
                wanted = set(params["time_entry_ids"])
                rows = [e for e in rows if e["id"] in wanted]
            for key in ("user_id", "task_id", "status", "payment_status"):
                if key in params:
                    rows = [e for e in rows if e.get(key) == params[key]]
            if "project_id" in params:
                rows = [e for e in rows if state.tasks.get(e.get("task_id"), {}).get("project") == params["project_id"]]
            if "start_datetime" in params:
                rows = [e for e in rows if e["start_time"] >= params["start_datetime"]]
            if "end_datetime" in params:
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
                    p for p in rows
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
        Route("/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return build_app(sandbox, routes)


def _keyed(table: Mapping[int, dict[str, Any]], ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
    return {str(i): json.loads(json.dumps(table[i])) for i in sorted({i for i in ids if i in table})}
