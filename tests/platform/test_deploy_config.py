"""The scale-out instance configs validate against Dagster's own config schemas (no cluster or
Docker engine needed)."""

from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize(
    "folder, module, cls",
    [("k8s", "dagster_k8s", "K8sRunLauncher"), ("docker", "dagster_docker", "DockerRunLauncher")],
)
def test_instance_config_and_run_launcher_validate(folder, module, cls):
    config, _ = dagster_instance_config(str(DEPLOY / folder))
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == (module, cls)
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert "postgres" in config["storage"]

    launcher_cls = getattr(__import__(module), cls)
    result = process_config(launcher_cls.config_type(), launcher["config"])
    assert result.success, [e.message for e in result.errors]


def test_launcher_config_errors_are_caught():
    from dagster_k8s import K8sRunLauncher

    raw = yaml.safe_load((DEPLOY / "k8s" / "dagster.yaml").read_text())["run_launcher"]["config"]
    raw["image_pull_policy"] = 42
    assert not process_config(K8sRunLauncher.config_type(), raw).success


def test_image_installs_the_package_and_serves_the_code_location():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "pip install" in dockerfile and "timesheet_assets.definitions" in dockerfile
