"""Small modules with one job each: no runtime module over 500 lines. The vendor sandboxes
(``sandbox*.py``: test fakes of whole APIs) are exempt."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "timesheet_assets"
LIMIT = 500


def test_no_runtime_module_is_over_the_limit():
    modules = [p for p in PACKAGE.rglob("*.py") if not p.name.startswith("sandbox")]
    assert len(modules) > 50  # the package was found
    too_long = {str(p.relative_to(PACKAGE)): n for p in modules if (n := len(p.read_text().splitlines())) > LIMIT}
    assert not too_long, f"split these along their concerns: {too_long}"
