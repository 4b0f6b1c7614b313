"""The scale-out instance configs validate against Dagster's own config schemas (no cluster or
Docker engine needed)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


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


def _pins() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_image_installs_exactly_the_locked_set_without_sandbox_or_ui_packages():
    import tomllib

    dockerfile = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    assert "-r requirements.lock" in dockerfile and "--no-deps ." in dockerfile
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for raw in [*project["dependencies"], *project["optional-dependencies"]["deploy"]]:
        requirement = Requirement(raw)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in deploy/requirements.lock (run make lock)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {requirement}"
    for raw in project["optional-dependencies"]["sandbox"]:
        name = canonicalize_name(Requirement(raw).name)
        if name in ("starlette", "uvicorn", "dagster-webserver", "xlwt"):
            assert name not in pins, f"{name} (sandbox/UI only) is in the production image's lock"


def test_the_code_location_loads_without_the_sandbox_and_ui_packages():
    blocked = ("starlette", "uvicorn", "xlwt", "dagster_webserver")
    script = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from timesheet_assets.definitions import build_definitions\n"
        "defs = build_definitions()\n"
        "print(len(defs.resolve_asset_graph().get_all_asset_keys()))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip().splitlines()[-1]) >= 10


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
    assert "pip install" in dockerfile and "-r requirements.lock" in dockerfile
    assert any(dep.startswith("psycopg2") for dep in project["dependencies"])
    assert "psycopg2-binary" in _pins()


def test_the_root_instance_says_in_its_first_lines_what_it_needs():
    text = (ROOT / "dagster.yaml").read_text()
    header = "\n".join(line for line in text.splitlines()[:12] if line.startswith("#"))
    config = yaml.safe_load(text)
    variables = {
        value["env"]
        for value in config["storage"]["custom"]["config"]["postgres_db"].values()
        if isinstance(value, dict)
    }
    assert variables and all(name in header for name in variables)
    for command in ("DAGSTER_HOME", "dagster instance migrate", "dagster-daemon run", "dagster-webserver"):
        assert command in header, command
