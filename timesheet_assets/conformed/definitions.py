"""Definitions of the conformed layer."""

from __future__ import annotations

import dagster as dg

from ..vendors.registry import VendorPlugin
from .assets import build_conformed_projects, build_conformed_timesheets


def conformed_definitions(plugins: list[VendorPlugin]) -> dg.Definitions:
    return dg.Definitions(assets=[build_conformed_timesheets(plugins), build_conformed_projects(plugins)])
