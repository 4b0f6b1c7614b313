"""The code location: ``defs`` is what ``dagster dev`` / ``dagster definitions validate`` load."""

from __future__ import annotations

import dagster as dg

from .settings import enabled_vendors
from .storage import warehouse_io_manager
from .vendors.registry import VendorPlugin, load_plugin


def enabled_plugins(vendors: tuple[str, ...] | None = None) -> list[VendorPlugin]:
    return [load_plugin(v) for v in (enabled_vendors() if vendors is None else vendors)]


def build_definitions(vendors: tuple[str, ...] | None = None) -> dg.Definitions:
    from .conformed.definitions import conformed_definitions

    plugins = enabled_plugins(vendors)
    return dg.Definitions.merge(
        dg.Definitions(resources={"io_manager": warehouse_io_manager()}),
        *(plugin.definitions() for plugin in plugins),
        conformed_definitions(plugins),
    )


defs = build_definitions()
