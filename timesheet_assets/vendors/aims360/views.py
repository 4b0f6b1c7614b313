"""The configured AIMS360 views (``AIMS360_VIEWS``) and the asset names they give."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Aims360ConfigError

DEFAULT_VIEWS = "Orders/Open Orders"


@dataclass(frozen=True)
class ViewSpec:
    """One configured AIMS360 view (``Source/View Name``)."""

    source: str
    view_name: str

    @property
    def label(self) -> str:
        return f"{self.source}/{self.view_name}"

    @property
    def slug(self) -> str:
        return snake_case(f"{self.source} {self.view_name}")


def snake_case(text: str) -> str:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()


def parse_views(raw: str | None, *, variable: str = "AIMS360_VIEWS") -> tuple[ViewSpec, ...]:
    """``Source/View Name`` pairs separated by ``;``. Only the first ``/`` separates: view
    names may contain slashes, sources do not."""
    text = DEFAULT_VIEWS if raw is None or not raw.strip() else raw
    views: list[ViewSpec] = []
    seen: dict[str, str] = {}
    for index, part in enumerate(text.split(";"), start=1):
        entry = part.strip()
        if not entry:
            continue
        source, sep, view_name = entry.partition("/")
        source, view_name = source.strip(), view_name.strip()
        if not sep or not source or not view_name:
            raise Aims360ConfigError(
                f"{variable} entry {index} ({entry!r}) is not 'Source/View Name'; "
                f"expected e.g. 'Orders/Open Orders;Invoices/Open Invoices'"
            )
        view = ViewSpec(source, view_name)
        if not view.slug:
            raise Aims360ConfigError(f"{variable} entry {index} ({entry!r}) has no letters or digits to name an asset")
        if view.slug in seen:
            raise Aims360ConfigError(
                f"{variable} names {seen[view.slug]!r} and {entry!r}, which both map to asset raw/aims360/{view.slug}"
            )
        seen[view.slug] = entry
        views.append(view)
    if not views:
        raise Aims360ConfigError(f"{variable} names no view; expected e.g. '{DEFAULT_VIEWS}'")
    return tuple(views)
