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


def _dockerfile_env() -> dict[str, str]:
    """ENV settings of deploy/Dockerfile (``ENV A=1 B=2 \\`` continued over lines)."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def _k8s_manifests(kind: str) -> dict[str, dict]:
    found = {}
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == kind:
                found[doc["metadata"]["name"]] = doc
    return found


def test_every_run_writes_to_the_shared_postgres_warehouse_the_image_names():
    import tomllib

    from timesheet_assets.storage import parse_target

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    image = parse_target(_dockerfile_env()["TIMESHEET_WAREHOUSE"])
    assert image.kind == "postgresql" and image.password is None  # the password is a secret, not in the image
    assert ".duckdb" not in dockerfile

    # Kubernetes: every run pod gets the settings ConfigMap (same URL) and the password Secret.
    k8s, _ = dagster_instance_config(str(DEPLOY / "k8s"))
    launcher = k8s["run_launcher"]["config"]
    settings = _k8s_manifests("ConfigMap")
    assert set(launcher["env_config_maps"]) <= set(settings)
    urls = [m["data"]["TIMESHEET_WAREHOUSE"] for n, m in settings.items() if "TIMESHEET_WAREHOUSE" in m.get("data", {})]
    assert urls and all(parse_target(u).display == image.display for u in urls)
    assert "timesheet-warehouse" in launcher["env_secrets"]
    assert "TIMESHEET_WAREHOUSE_PASSWORD" in (DEPLOY / "k8s" / "timesheet-assets-settings.yaml").read_text()

    # Docker: each run container gets the URL and the password from the daemon's environment,
    # and no warehouse volume (nothing of the warehouse lives with a container).
    docker, _ = dagster_instance_config(str(DEPLOY / "docker"))
    docker_launcher = docker["run_launcher"]["config"]
    assert {"TIMESHEET_WAREHOUSE", "TIMESHEET_WAREHOUSE_PASSWORD"} <= set(docker_launcher["env_vars"])
    volumes = (docker_launcher.get("container_kwargs") or {}).get("volumes") or []
    assert not [v for v in volumes if "warehouse" in v]

    # The image installs the package with its PostgreSQL driver.
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]
    assert "pip install" in dockerfile and "'.[deploy]'" in dockerfile
    assert any(dep.startswith("psycopg2") for dep in project["dependencies"])
