"""Shared helpers for the deployment checks: render the chart with the real Helm engine
(helm-python-sdk, Helm v4's Go SDK behind a C ABI) and pick objects out of the result."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import tomli
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "guildhall"
PRODUCTION_VALUES = CHART / "examples" / "production-values.yaml"
RELEASE = "guildhall"
NAMESPACE = "councils"
CONFIG_PATH = "/etc/guildhall/guildhall.toml"


def production_values() -> dict[str, Any]:
    """The production example, parsed the way `helm -f` parses it."""
    return helm.values_from_yaml(PRODUCTION_VALUES.read_text())


def backup_values() -> dict[str, Any]:
    """The defaults with the backup and audit-verify CronJobs on, the backup URL in the
    chart's own Secret and the dumps on an existing claim (the production example has an
    existing Secret and a claim the chart creates)."""
    return {
        "database": {"backupUrl": "postgres://guildhall_backup@postgresql:5432/guildhall"},
        "backup": {"enabled": True, "persistence": {"existingClaim": "guildhall-dumps"}},
        "auditVerify": {"enabled": True},
    }


# The value sets every check runs with: the chart's defaults, the production example, and
# the defaults with the CronJobs on.
VALUE_SETS = {
    "default": lambda: None,
    "production": production_values,
    "backups": backup_values,
}


@lru_cache(maxsize=64)
def _render_cached(values_json: str, chart: str, name: str, namespace: str) -> str:
    values = json.loads(values_json)
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(values, name=name, namespace=namespace, is_install=True)
    return json.dumps(manifests)


def render(
    values: dict[str, Any] | None = None,
    *,
    chart: Path = CHART,
    name: str = RELEASE,
    namespace: str = NAMESPACE,
) -> dict[str, str]:
    """Renders the chart offline (like `helm template`): template path -> manifest text.

    Raises helm_python.HelmValuesError when the values break values.schema.json and
    helm_python.HelmRenderError when a template fails.
    """
    return json.loads(_render_cached(json.dumps(values), str(chart), name, namespace))


def objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in the rendered manifests (NOTES.txt is not one)."""
    found = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                found.append(doc)
    return found


def render_objects(values: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    return objects(render(values, **kw))


def notes(values: dict[str, Any] | None = None) -> str:
    manifests = render(values)
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def only(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of `kind` (and `name`), failing the test when there is not exactly one."""
    matches = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def all_of(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def server_configmap(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in all_of(objs, "ConfigMap") if not is_hook(o))


def server_toml_text(objs: list[dict[str, Any]]) -> str:
    return server_configmap(objs)["data"]["guildhall.toml"]


def server_toml(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return tomli.loads(server_toml_text(objs))


def deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return only(objs, "Deployment")


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "the server and the migration Job run one container each"
    return containers[0]


def migration_job(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return only(objs, "Job")


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def merged(base: dict[str, Any] | None, **overrides: Any) -> dict[str, Any]:
    """`base` with nested overrides given as keyword arguments of dicts."""
    out = copy.deepcopy(base or {})

    def merge(into: dict[str, Any], new: dict[str, Any]) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = copy.deepcopy(value)

    merge(out, overrides)
    return out


def chart_without_schema(tmp_path: Path) -> Path:
    """A copy of the chart without values.schema.json, as `--skip-schema-validation` sees it."""
    copy_dir = tmp_path / "guildhall"
    shutil.copytree(CHART, copy_dir)
    (copy_dir / "values.schema.json").unlink()
    return copy_dir


@pytest.fixture(params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any] | None]:
    """(name, values) for each value set every check runs with."""
    return request.param, VALUE_SETS[request.param]()


@pytest.fixture(scope="session")
def guildhall_bin() -> Path:
    """The real binary, named by GUILDHALL_BIN. Missing is a failure, never a skip: the point
    of these checks is that the chart's configuration loads in the real loader."""
    named = os.environ.get("GUILDHALL_BIN")
    if not named:
        pytest.fail("GUILDHALL_BIN is not set: it must name the guildhall binary (e.g. target/release/guildhall)")
    path = Path(named)
    if not path.is_file():
        pytest.fail(f"GUILDHALL_BIN={named} is not a file")
    if not path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        pytest.fail(f"GUILDHALL_BIN={named} is not executable")
    return path.resolve()
