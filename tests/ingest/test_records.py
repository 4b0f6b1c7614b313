import json
from datetime import date

from pydantic import BaseModel, ConfigDict

from timesheet_assets.ingest import RawSpec, build_raw_frame
from timesheet_assets.ingest.records import unkeyed_key


class Line(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    day: date
    hours: float
    note: str | None = None


def rows(line: Line):
    yield {"record_key": str(line.id), "work_date": line.day, "hours": line.hours, "note": line.note}


SPEC = RawSpec(
    model=Line,
    columns={"work_date": "date", "hours": "float64", "note": "string"},
    to_rows=rows,
    key_of=lambda r: r.get("id"),
    date_column="work_date",
    date_of=lambda r: date.fromisoformat(r["day"]),
)


def test_valid_invalid_and_foreign_records_all_become_rows():
    served = [
        {"id": 1, "day": "2026-01-02", "hours": 7.5, "surprise": {"new": True}},
        {"id": 2, "day": "2026-01-02", "hours": "lots"},
        {"day": "2026-01-03", "hours": 1},
        "not an object",
        {"id": 5, "day": "2026-01-04", "hours": 8, "note": None},
    ]
    raw = build_raw_frame(SPEC, served, default_date=date(2026, 1, 1))
    frame = raw.frame
    assert raw.records_served == 5 and raw.quarantined == 3 and raw.valid_rows == 2
    assert len(frame) == raw.records_served  # nothing dropped
    assert list(frame.columns) == [
        "record_key",
        "work_date",
        "hours",
        "note",
        "payload",
        "quarantine_reason",
        "ingested_at",
    ]

    valid = frame[frame["quarantine_reason"].isna()]
    assert valid["record_key"].tolist() == ["1", "5"]
    assert valid["hours"].tolist() == [7.5, 8.0]
    # Unknown fields survive in the payload exactly as served.
    assert json.loads(valid.iloc[0]["payload"])["surprise"] == {"new": True}

    bad = frame.set_index("record_key")
    assert "hours: Input should be a valid number" in bad.loc["2", "quarantine_reason"]
    assert bad.loc["2", "work_date"] == date(2026, 1, 2)  # lenient date keeps it in its partition
    no_id = unkeyed_key(json.dumps(served[2], separators=(",", ":")))
    not_object = unkeyed_key('"not an object"')
    assert "id: Field required" in bad.loc[no_id, "quarantine_reason"]
    assert bad.loc[not_object, "quarantine_reason"] == "TypeError: record is not a JSON object"
    assert bad.loc[not_object, "work_date"] == date(2026, 1, 1)  # window start when unreadable
    assert json.loads(bad.loc[not_object, "payload"]) == "not an object"


def test_quarantine_reason_never_quotes_the_value():
    raw = build_raw_frame(SPEC, [{"id": 1, "day": "2026-01-02", "hours": "password=hunter22"}])
    assert "hunter22" not in raw.frame["quarantine_reason"].iloc[0]


def test_one_record_may_explode_into_many_rows():
    spec = RawSpec(
        model=Line,
        columns={"work_date": "date", "hours": "float64"},
        to_rows=lambda m: [{"record_key": f"{m.id}:{i}", "work_date": m.day, "hours": m.hours / 2} for i in range(2)],
        key_of=lambda r: r.get("id"),
    )
    raw = build_raw_frame(spec, [{"id": 9, "day": "2026-02-01", "hours": 3}])
    assert raw.frame["record_key"].tolist() == ["9:0", "9:1"] and raw.frame["hours"].sum() == 3


def test_empty_input_gives_typed_empty_frame():
    raw = build_raw_frame(SPEC, [])
    assert raw.frame.empty and raw.records_served == 0
    assert "payload" in raw.frame.columns and "ingested_at" in raw.frame.columns
