from collections.abc import Iterator

import pytest

from tests.conformed.three_weeks import CONFIG
from timesheet_assets.sandbox.registry import serve_sandboxes
from timesheet_assets.settings import VENDOR_NAMES


@pytest.fixture(scope="module")
def three_week_sandboxes() -> Iterator[dict]:
    """Every vendor's sandbox holding ``three_weeks.CONFIG``, for the tests of one module."""
    with serve_sandboxes(VENDOR_NAMES, CONFIG) as running:
        yield running
