"""Definitions of the conformed layer."""

from __future__ import annotations

import dagster as dg

from ..code_references import with_code_references
from ..vendors.registry import VendorPlugin
from .assets import build_conformed_projects, build_conformed_timesheets


def conformed_definitions(plugins: list[VendorPlugin]) -> dg.Definitions:
    return dg.Definitions(
        assets=with_code_references([build_conformed_timesheets(plugins), build_conformed_projects(plugins)])
    )
