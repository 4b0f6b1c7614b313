"""A publishlink's body, read as the ``outputFormat`` its job was created with.

The Aqua page: "If the preferred output format is CSV or excel, the file will be returned
and if the preferred output format is JSON, the JSON will be returned". So the format is
known before the download: the body is read as that format and nothing else (content types
on file downloads are unreliable, and a CSV whose first header is ``[Order No]`` is no JSON).
Excel may come as xlsx or as a legacy (97-2003) xls: the file's signature picks the reader.

A 200 whose body is not a file of that format never becomes a table (it would replace the
previous one with nothing or with the page's lines):

* an empty body → ``MalformedBody`` (retried like a cut-off transfer, then an outage: the
  output may not have been written yet);
* an HTML page, an XML document, a JSON message (``{"message": "Access Denied"}``), plain
  text ("Access Denied"), or a file of another format → ``VendorRejected`` quoting what came
  (the run fails at once: a retry would be answered the same).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from ...http import MalformedBody, VendorRejected
from .spreadsheets import (
    OLE2_MAGIC,
    ZIP_MAGIC,
    csv_records,
    csv_rows,
    decode_text,
    xls_rows,
    xlsx_rows,
)

OUTPUT_FORMATS = {"json": "JSON", "csv": "CSV", "excel": "Excel"}
_BLANK = b"\xef\xbb\xbf \t\r\n"
_ROW_LIST_KEYS = ("value", "Value", "data", "Data", "rows", "Rows", "items", "records")
_MESSAGE_KEYS = ("message", "Message", "error_description", "error", "Error", "detail", "title")
_HTML = re.compile(r"<\s*(!doctype\s+html|html|head|body|title|h1|h2|div|p|table|center|pre)\b", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
# Words of the messages servers answer instead of a file. Only consulted for bodies that
# could hardly be a view export anyway (one column, or a header and no rows).
_ERROR_WORDS = re.compile(
    r"\b(access\s+denied|denied|unauthori[sz]ed|forbidden|not\s+found|expired|error|exception|"
    r"invalid|failed|unavailable|not\s+available|permission|log\s*in|sign\s*in)\b",
    re.I,
)
_QUOTE_CHARS = 200


def output_format_name(value: str) -> str:
    """``JSON``, ``CSV`` or ``Excel`` for any case or spacing; ``ValueError`` otherwise."""
    key = "".join(ch for ch in str(value).lower() if ch.isalnum())
    if key not in OUTPUT_FORMATS:
        raise ValueError(f"output format must be one of {', '.join(OUTPUT_FORMATS.values())}, got {value!r}")
    return OUTPUT_FORMATS[key]


@dataclass
class ExportFile:
    """A downloaded job output and the rows parsed from it."""

    output_format: str  # "JSON", "CSV" or "Excel": what the job was asked for
    records: list[Any]
    bytes: int
    content_type: str | None
    file_type: str = ""  # "json", "csv", "xlsx" or "xls": what was read


def parse_export(content: bytes, output_format: str, content_type: str | None = None) -> ExportFile:
    """Rows of a publishlink body in ``output_format`` (the job's ``outputFormat``)."""
    fmt = output_format_name(output_format)
    if not content.strip(_BLANK):
        raise MalformedBody(f"publishlink answered an empty body where a {fmt} file was expected")
    if fmt == "JSON":
        return ExportFile(fmt, _json_export(content, content_type), len(content), content_type, "json")
    if fmt == "CSV":
        return ExportFile(fmt, _csv_export(content, content_type), len(content), content_type, "csv")
    if content.startswith(ZIP_MAGIC):
        return ExportFile(fmt, xlsx_rows(content), len(content), content_type, "xlsx")
    if content.startswith(OLE2_MAGIC):
        return ExportFile(fmt, xls_rows(content), len(content), content_type, "xls")
    raise not_the_format(content, fmt, content_type)


# -- JSON --------------------------------------------------------------------------------
def _json_export(content: bytes, content_type: str | None) -> list[Any]:
    stripped = content.lstrip(_BLANK)
    try:
        body = json.loads(stripped)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        if stripped[:1] in (b"[", b"{"):
            # A JSON document that ends early or breaks inside: a cut-off transfer.
            raise MalformedBody(f"publishlink JSON could not be decoded ({type(exc).__name__}: {exc})") from None
        raise not_the_format(content, "JSON", content_type) from None
    return json_rows(body)


def json_rows(body: Any) -> list[Any]:
    if body is None:
        return []  # an empty export, as some serializers write an empty list
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in _ROW_LIST_KEYS:
            if isinstance(body.get(key), list):
                return body[key]
            if key in body and body[key] is None:
                return []
        # Rows under a key of the server's choosing next to counts or links: the one list of
        # objects. A grid row has no list-valued cells, so this is never a one-row export.
        lists = [v for v in body.values() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(row, dict) for row in lists[0]):
            return lists[0]
        message = _message_of(body)
        if message:
            raise VendorRejected(message)
        # A view export with exactly one row, served as an object.
        return [body]
    detail = f": {_clip(body)}" if isinstance(body, str) and body.strip() else ""
    raise VendorRejected(f"publishlink JSON is neither a list of rows nor an object{detail}")


def _message_of(body: dict, *, nested: bool = True) -> str | None:
    """The message of an error object: ``{"message": ...}``, or one level down as in
    ``{"error": {"code": 403, "message": ...}}`` (a grid row has no object-valued cells)."""
    for key in _MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if nested and isinstance(value, dict):
            inner = _message_of(value, nested=False)
            if inner:
                return inner
    return None


# -- CSV ---------------------------------------------------------------------------------
def _csv_export(content: bytes, content_type: str | None) -> list[dict[str, Any]]:
    stripped = content.lstrip(_BLANK)
    if stripped.startswith((ZIP_MAGIC, OLE2_MAGIC, b"<")) or _is_json_document(stripped):
        raise not_the_format(content, "CSV", content_type)
    text = decode_text(content)
    if "\x00" in text:
        raise not_the_format(content, "CSV", content_type)
    records = csv_records(text)
    if _reads_as_a_message(records, text, content_type):
        raise not_the_format(content, "CSV", content_type)
    return csv_rows(text, records)


def _is_json_document(stripped: bytes) -> bool:
    if stripped[:1] not in (b"[", b"{"):
        return False
    try:
        return isinstance(json.loads(stripped), (dict, list))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False  # e.g. a CSV whose first header is "[Order No]"


def _reads_as_a_message(records: list[list[str]], text: str, content_type: str | None) -> bool:
    """A CSV export of a view has a header row of its columns. A body of one column, or one
    that is a header with no rows, is a message ("Access Denied") when it also sounds like
    one, or (one column) when it came as plain text or as a single unterminated line."""
    filled = [r for r in records if any(cell.strip() for cell in r)]
    if not filled:
        return False
    sounds_like_error = bool(_ERROR_WORDS.search(" ".join(filled[0])))
    if all(len(r) <= 1 for r in filled):
        plain = _media_type(content_type) in ("text/plain", "text/html")
        one_line = "\n" not in text and "\r" not in text
        return plain or one_line or sounds_like_error
    return len(filled) == 1 and sounds_like_error


# -- what came instead ---------------------------------------------------------------------
def not_the_format(content: bytes, expected: str, content_type: str | None) -> VendorRejected:
    """The error for a 200 whose body is not a ``expected`` file, saying what it is."""
    what, detail = describe_body(content, content_type)
    if what == "a JSON message":
        return VendorRejected(f"{detail} (a JSON message came instead of the {expected} export)")
    suffix = f": {detail}" if detail else ""
    return VendorRejected(f"publishlink answered {what} instead of the {expected} export the job was asked for{suffix}")


def describe_body(content: bytes, content_type: str | None) -> tuple[str, str]:
    """What a body is, for an error message: (kind, quoted text or title)."""
    stripped = content.lstrip(_BLANK)
    if stripped.startswith(ZIP_MAGIC):
        return "a zip file (an xlsx workbook?)", ""
    if stripped.startswith(OLE2_MAGIC):
        return "an Excel 97-2003 (xls) workbook", ""
    text = decode_text(stripped[:8192])
    if text.startswith("<"):
        if _HTML.search(text) or "html" in _media_type(content_type):
            title = _TITLE.search(text)
            shown = title.group(1) if title else _TAG.sub(" ", text)
            return "an HTML page", _clip(html.unescape(shown))
        return "an XML document", ""
    if _is_json_document(stripped):
        body = json.loads(stripped)
        message = _message_of(body) if isinstance(body, dict) else None
        return ("a JSON message", _clip(message)) if message else ("JSON", "")
    if "\x00" in text or sum(not (ch.isprintable() or ch.isspace()) for ch in text[:512]) > 8:
        return "binary data", ""
    lines = [line for line in text.splitlines() if line.strip()]
    return "text", _clip(lines[0] if lines else text)


def _clip(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1] + "…"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()
