"""``raw/ibuildapp/time_entry_side_tables``: the users, tasks and projects objects each day's
entries joined, once per day and object, as served."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN

# ``raw/ibuildapp/time_entry_side_tables`` keeps each users/tasks/projects object the day's
# entries joined, once per day, as served: beside the entries rather than copied onto each of
# them, since a task object alone (it lists every user who booked on it) outweighs the entry
# and a day holds thousands of entries but tens of distinct objects.
# Which entry column names the object of each side table:
SIDE_TABLE_REFERENCES = (("users", "user_id"), ("tasks", "task_id"), ("projects", "project_id"))

SIDE_TABLE_COLUMNS: Mapping[str, str] = {"work_date": "date", "side_table": "string", "object_id": "string"}
SIDE_TABLE_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    KEY_COLUMN: "<side table>:<object id>, unique within a day.",
    "work_date": "The day whose time entries joined the object (the partition key).",
    "side_table": "users, tasks or projects: the side table of the search the object comes from.",
    "object_id": "The object's id in its side table.",
    PAYLOAD_COLUMN: "The object exactly as the search served it (JSON text).",
}


def side_table_frame(
    entries: pd.DataFrame,
    related: Mapping[str, Mapping[str, Mapping[str, Any]]],
    ingested_at: datetime,
) -> pd.DataFrame:
    """One row per work day and side-table object the day's valid entries joined
    (``SIDE_TABLE_REFERENCES``), the object as served in ``payload``; ``record_key`` is
    ``<side table>:<object id>``, unique within a day. Rows are ordered by day, table, id."""
    valid = np.flatnonzero(entries[QUARANTINE_COLUMN].isna().to_numpy()) if len(entries) else np.zeros(0, int)
    day_codes, days = pd.factorize(entries["work_date"].to_numpy(dtype=object)[valid])
    columns: dict[str, list[Any]] = {"work_date": [], "side_table": [], "object_id": [], PAYLOAD_COLUMN: []}
    for table, column in SIDE_TABLE_REFERENCES:
        served = related.get(table, {})
        ids = entries[column].to_numpy(dtype=object, na_value=None)[valid]
        id_codes, uniques = pd.factorize(ids)  # None -> -1
        known = np.array([object_id in served for object_id in uniques], dtype=bool)
        keep = (id_codes >= 0) & (day_codes >= 0)
        keep[keep] = known[id_codes[keep]]
        width = max(len(uniques), 1)
        pairs = _distinct_sorted(day_codes[keep].astype(np.int64) * width + id_codes[keep], len(days) * width)
        pair_days, pair_ids = np.divmod(pairs, width)
        payloads = np.array([_side_payload(served[u]) if k else None for u, k in zip(uniques, known)], dtype=object)
        columns["work_date"].extend(days[pair_days])
        columns["side_table"].extend([table] * len(pairs))
        columns["object_id"].extend(str(v) for v in np.asarray(uniques, dtype=object)[pair_ids])
        columns[PAYLOAD_COLUMN].extend(payloads[pair_ids])
    frame = pd.DataFrame(columns, dtype=object)
    frame = frame.sort_values(["work_date", "side_table", "object_id"], kind="stable", ignore_index=True)
    out = pd.DataFrame(
        {
            KEY_COLUMN: pd.array(frame["side_table"] + ":" + frame["object_id"], dtype="string"),
            "work_date": frame["work_date"].astype(object),
            "side_table": pd.array(frame["side_table"], dtype="string"),
            "object_id": pd.array(frame["object_id"], dtype="string"),
            PAYLOAD_COLUMN: pd.array(frame[PAYLOAD_COLUMN], dtype="string"),
        }
    )
    out[INGESTED_COLUMN] = pd.Series(
        pd.Timestamp(ingested_at).tz_convert("UTC"), index=out.index, dtype="datetime64[ns, UTC]"
    )
    return out


def _distinct_sorted(codes: np.ndarray, space: int) -> np.ndarray:
    """The distinct values of ``codes`` (integers in ``0..space-1``), ascending: a bitmap when
    the space is small (days × objects usually is), else ``np.unique``."""
    if space <= 64 * max(len(codes), 1_000_000):
        seen = np.zeros(space, dtype=bool)
        seen[codes] = True
        return np.flatnonzero(seen)
    return np.unique(codes)


def _side_payload(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
