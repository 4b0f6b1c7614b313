"""Source-code references on assets: the UI links each asset to the function that computes it."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg


def with_code_references(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """``assets`` with the file and line of their compute function in their metadata
    (``dagster/code_references``)."""
    with warnings.catch_warnings():
        # The code-reference metadata classes are marked beta in 1.13; the references are plain.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return list(dg.with_source_code_references(list(assets)))  # type: ignore[arg-type]
