"""Blikk's asset keys and group, shared by its assets and checks."""

from __future__ import annotations

import dagster as dg

TIME_REPORTS_KEY = dg.AssetKey(["raw", "blikk", "time_reports"])
PROJECTS_KEY = dg.AssetKey(["raw", "blikk", "projects"])
GROUP = "blikk"
RESOURCE_KEY = "blikk"
