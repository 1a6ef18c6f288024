"""The chart lints cleanly under `helm lint --strict`, renders, and every object it renders is
valid for Kubernetes (strict schemas, unknown fields refused)."""

from __future__ import annotations

import helm_python as helm
import kubernetes_validate
import pytest

from conftest import CHART, all_of, production_values, render, render_objects

# Kubernetes versions checked: the oldest the chart supports (Chart.yaml kubeVersion, for the
# built-in pre-stop sleep action) and the newest kubernetes-validate knows.
OLDEST_SUPPORTED = "1.30"
KUBE_VERSIONS = [OLDEST_SUPPORTED, kubernetes_validate.latest_version()]

# Kinds from CustomResourceDefinitions have no schema in kubernetes-validate's Kubernetes
# set, so they are skipped there. Only these; test_servicemonitor_shape checks them by hand.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

SEVERITY_INFO = 1


def lint_findings(values):
    report = helm.lint(str(CHART), values, strict=True)
    assert report["total_charts_linted"] == 1, report
    return report


def test_helm_engine_is_helm_4() -> None:
    assert helm.helm_sdk_version().startswith("v4."), helm.helm_sdk_version()


def test_lint_strict_is_clean(value_set) -> None:
    name, values = value_set
    report = lint_findings(values)
    # Strict lint turns warnings into errors; only informational notes (e.g. "icon is
    # recommended") may remain.
    problems = [m for m in report["messages"] if m["severity"] > SEVERITY_INFO]
    assert not problems, f"{name}: {problems}"
    assert not report["errors"], f"{name}: {report['errors']}"


def test_lint_strict_reports_schema_violations() -> None:
    """The lint check can fail: a typo under `config` is an error, as the server says too."""
    report = lint_findings({"config": {"runtime": {"tenant_concurency": 4}}})
    assert report["errors"], report
    assert any("tenant_concurency" in e for e in report["errors"]), report["errors"]


def test_chart_metadata() -> None:
    with helm.Chart.load(str(CHART)) as chart:
        meta = chart.metadata
        assert chart.schema is not None, "values.schema.json is shipped"
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "guildhall"
    assert meta["appVersion"] == "0.1.0"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_validates_against_kubernetes_schemas(value_set, kube_version) -> None:
    name, values = value_set
    objs = render_objects(values)
    assert objs, "the chart rendered nothing"
    checked = []
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']} is invalid for Kubernetes {kube_version} at {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{name}: {e.message}")
        checked.append(obj["kind"])
    assert "Deployment" in checked and "Job" in checked, checked


def test_production_renders_every_optional_object() -> None:
    """The production example switches on the optional objects, so the checks above see them."""
    kinds = {o["kind"] for o in render_objects(production_values())}
    assert kinds >= {
        "ConfigMap",
        "CronJob",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    }, kinds


def test_optional_objects_render_and_validate_with_sqlite() -> None:
    """The single-replica SQLite shape (PersistentVolumeClaim, Recreate) is valid too."""
    values = {
        "replicaCount": 1,
        "database": {"url": "sqlite:///var/lib/guildhall/guildhall.db?mode=rwc"},
        "persistence": {"enabled": True},
    }
    objs = render_objects(values)
    assert all_of(objs, "PersistentVolumeClaim")
    for obj in objs:
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)


def test_servicemonitor_shape() -> None:
    """The ServiceMonitor (a CRD kind, skipped by the schema check above) scrapes /metrics on
    the Service's http port and selects the Service."""
    objs = render_objects(production_values())
    (monitor,) = all_of(objs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == "http"
    service = next(o for o in objs if o["kind"] == "Service")
    assert any(p["name"] == "http" for p in service["spec"]["ports"])
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert not all_of(render_objects(None), "ServiceMonitor"), "off by default"


def test_render_is_deterministic() -> None:
    values = production_values()
    from conftest import _render_cached  # noqa: PLC0415 - the uncached path on purpose

    _render_cached.cache_clear()
    first = render(values)
    _render_cached.cache_clear()
    assert render(values) == first


def documented_values() -> set[str]:
    """Value paths named in the first column of charts/guildhall/README.md's values table;
    `a.b.c` / `d` names a.b.c and its sibling a.b.d."""
    import re  # noqa: PLC0415

    documented = set()
    for line in (CHART / "README.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        first, *siblings = names
        documented.add(first)
        parent = first.rsplit(".", 1)[0] + "." if "." in first else ""
        documented.update(parent + s for s in siblings)
    return documented


def test_readme_documents_every_value() -> None:
    with helm.Chart.load(str(CHART)) as chart:
        values = chart.values

    def leaves(tree, prefix=""):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                yield from leaves(value, f"{path}.")
            else:
                yield path

    documented = documented_values()
    missing = []
    for leaf in leaves(values):
        parts = leaf.split(".")
        if not any(".".join(parts[: i + 1]) in documented for i in range(len(parts))):
            missing.append(leaf)
    assert not missing, f"charts/guildhall/README.md does not document: {missing}"
