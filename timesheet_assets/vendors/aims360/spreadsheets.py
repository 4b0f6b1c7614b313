"""Rows of CSV and Excel (xlsx and legacy xls) export files.

Every reader gives the same shape: a list of dicts keyed by the header row (duplicate or
blank headers made unique), empty cells as ``None``, blank rows skipped. A file that is cut
off, or that the workbook library cannot read, raises ``MalformedBody`` (retried like a
broken connection, then an outage).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ...http import MalformedBody

ZIP_MAGIC = b"PK\x03\x04"  # xlsx is a zip of XML parts
OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # legacy xls lives in an OLE2 compound file
# Whole-number cells of a legacy xls arrive as floats; beyond 2**53 a float is no exact integer.
_EXACT_FLOAT_INTEGERS = 2**53


def decode_text(content: bytes) -> str:
    """Text of a CSV file: UTF-16 when its BOM says so, else UTF-8 (with or without BOM),
    else Windows-1252 (what Excel writes on Western systems), else Latin-1."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def unique_headers(headers: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for position, name in enumerate(headers, start=1):
        name = name.strip() or f"column_{position}"
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name} ({count + 1})")
    return unique


# -- CSV ---------------------------------------------------------------------------------
def csv_records(text: str) -> list[list[str]]:
    """CSV records, strictly parsed when possible so that a file ending inside a quoted field
    (cut off) is noticed; sloppy quoting (``"x"y``) is read leniently, as Excel would."""
    try:
        return list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise MalformedBody("publishlink CSV ends inside a quoted field: the file is truncated") from None
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise MalformedBody(f"publishlink CSV could not be read ({exc})") from None


def csv_rows(text: str, records: list[list[str]]) -> list[dict[str, Any]]:
    """Rows of parsed CSV ``records`` (``text`` is the file, to tell a cut-off last row)."""
    if not records:
        return []
    headers = unique_headers(records[0])
    body = records[1:]
    last = body[-1] if body else None
    if (
        last is not None
        and 0 < len(last) < len(headers)
        and any(v.strip() for v in last)
        and not text.endswith(("\n", "\r"))
    ):
        # A last row with missing cells and no line break after it is a file cut off mid-row,
        # not a short row: loading it would silently drop the rest of the export.
        raise MalformedBody(
            f"publishlink CSV ends mid-row (row {len(body)} has {len(last)} of {len(headers)} "
            "columns and no line break): the file is truncated"
        )
    rows = []
    for values in body:
        if not values or all(v == "" for v in values):
            continue
        row: dict[str, Any] = {}
        for position, value in enumerate(values):
            name = headers[position] if position < len(headers) else f"column_{position + 1}"
            row[name] = value
        for name in headers[len(values) :]:
            row[name] = None
        rows.append(row)
    return rows


# -- Excel -------------------------------------------------------------------------------
def _sheet_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Dict rows of a sheet's value rows: the first row is the header."""
    rows = iter(rows)
    try:
        headers = unique_headers(["" if h is None else str(h) for h in next(rows)])
    except StopIteration:
        return []
    result = []
    for values in rows:
        if values is None or all(v is None or v == "" for v in values):
            continue
        row = {}
        for position, value in enumerate(values):
            if position >= len(headers) and value is None:
                continue
            name = headers[position] if position < len(headers) else f"column_{position + 1}"
            row[name] = value.isoformat() if isinstance(value, datetime) else value
        result.append(row)
    return result


def xlsx_rows(content: bytes) -> list[dict[str, Any]]:
    """The first sheet of an Office Open XML workbook."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is a malformed body
        raise MalformedBody(f"publishlink Excel file could not be read ({type(exc).__name__})") from exc
    try:
        return _sheet_rows(book.worksheets[0].iter_rows(values_only=True))
    except Exception as exc:  # noqa: BLE001 - a sheet that cannot be read is a malformed body
        raise MalformedBody(f"publishlink Excel file could not be read ({type(exc).__name__})") from None
    finally:
        book.close()


def xls_rows(content: bytes) -> list[dict[str, Any]]:
    """The first sheet of a legacy (BIFF, Excel 97-2003) workbook."""
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=content, on_demand=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is a malformed body
        raise MalformedBody(f"publishlink Excel (xls) file could not be read ({type(exc).__name__})") from None
    try:
        sheet = book.sheet_by_index(0)
        return _sheet_rows(
            [_xls_value(cell, book.datemode) for cell in sheet.row(index)] for index in range(sheet.nrows)
        )
    except Exception as exc:  # noqa: BLE001 - a sheet that cannot be read is a malformed body
        raise MalformedBody(f"publishlink Excel (xls) file could not be read ({type(exc).__name__})") from None
    finally:
        book.release_resources()


def _xls_value(cell: Any, datemode: int) -> Any:
    """A legacy cell as the xlsx reader would give it: numbers that are whole as ints (xls
    stores every number as a float), dates as datetimes, booleans as bools, blanks as None,
    error cells as their text (``#N/A``)."""
    import xlrd

    kind, value = cell.ctype, cell.value
    if kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if kind == xlrd.XL_CELL_NUMBER:
        if value.is_integer() and abs(value) <= _EXACT_FLOAT_INTEGERS:
            return int(value)
        return value
    if kind == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(value, datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return value
    if kind == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if kind == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(value, "#ERROR")
    return value
