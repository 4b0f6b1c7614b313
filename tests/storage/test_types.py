"""Column typing shares one in-memory DuckDB per process: frames typed from many threads at
once get the same types as typed one at a time."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pandas as pd

from timesheet_assets.storage.types import NULL, common_type, frame_types


def _frames() -> list[pd.DataFrame]:
    return [
        pd.DataFrame({"n": [1, 2], "s": ["a", "b"]}),
        pd.DataFrame({"d": [date(2026, 1, 1)], "x": [1.5], "empty": [None]}),
        pd.DataFrame({"t": pd.to_datetime(["2026-01-01T00:00:00Z"]), "b": [True]}),
    ]


def test_types_of_frames():
    ints, dates, stamps = (frame_types(f) for f in _frames())
    assert ints == {"n": "BIGINT", "s": "VARCHAR"}
    assert dates == {"d": "DATE", "x": "DOUBLE", "empty": NULL}
    assert stamps == {"t": "TIMESTAMP WITH TIME ZONE", "b": "BOOLEAN"}
    assert common_type("BIGINT", "DOUBLE") == "DOUBLE"
    assert common_type("DATE", "TIMESTAMP") == "TIMESTAMP"


def test_frames_typed_from_many_threads_at_once_keep_their_own_types():
    frames = _frames() * 20
    alone = [frame_types(f) for f in frames]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(frame_types, frames))
        widened = list(pool.map(lambda pair: common_type(*pair), [("BIGINT", "VARCHAR")] * 30))
    assert together == alone
    assert set(widened) == {"VARCHAR"}
