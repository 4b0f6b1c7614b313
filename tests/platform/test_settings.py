import pytest

from timesheet_assets.schedules import lookback_days
from timesheet_assets.settings import SettingError, enabled_vendors, partitions_start_date


def test_default_is_all_five_vendors():
    assert enabled_vendors("") == ("aimsio", "ajera", "aims360", "blikk", "ibuildapp")


def test_selection_is_normalised_and_ordered():
    assert enabled_vendors(" Blikk ,ajera") == ("ajera", "blikk")


def test_unknown_vendor_is_a_clear_error_naming_the_setting():
    with pytest.raises(SettingError, match=r"TIMESHEET_VENDORS names unknown vendor\(s\) acme, jira"):
        enabled_vendors("blikk,acme,jira")


def test_unknown_vendor_fails_loading_definitions(monkeypatch):
    from timesheet_assets.definitions import build_definitions

    monkeypatch.setenv("TIMESHEET_VENDORS", "blikk,nonesuch")
    with pytest.raises(SettingError, match="nonesuch"):
        build_definitions()


def test_start_date_must_be_iso(monkeypatch):
    monkeypatch.setenv("TIMESHEET_START_DATE", "01/02/2025")
    with pytest.raises(SettingError, match="TIMESHEET_START_DATE"):
        partitions_start_date()


def test_lookback_per_vendor_overrides_global(monkeypatch):
    monkeypatch.setenv("TIMESHEET_LOOKBACK_DAYS", "10")
    monkeypatch.setenv("BLIKK_LOOKBACK_DAYS", "30")
    assert lookback_days("blikk") == 30 and lookback_days("ajera") == 10
    monkeypatch.setenv("AJERA_LOOKBACK_DAYS", "soon")
    with pytest.raises(SettingError, match="AJERA_LOOKBACK_DAYS"):
        lookback_days("ajera")
