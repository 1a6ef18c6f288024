"""The backup and audit-verify CronJobs as rendered: off by default, valid for Kubernetes,
secured like the server, the dumps on their volume, the database URLs from the database
Secret, never selected as the server, reaching the database through the NetworkPolicy, and
the values refused that cannot work. test_restore.py runs the backup script and the restore
procedure against PostgreSQL."""

from __future__ import annotations

import helm_python as helm
import kubernetes_validate
import pytest

from conftest import (
    CONFIG_PATH,
    all_of,
    backup_values,
    chart_without_schema,
    container,
    deployment,
    is_hook,
    merged,
    notes,
    only,
    production_values,
    render,
    render_objects,
    secret_data,
)
from test_chart import KUBE_VERSIONS, lint_findings, SEVERITY_INFO

BACKUP_URL = "postgres://guildhall_backup:b4ckup@pg.internal:5432/guildhall"
# Both CronJobs on, with the chart's Secret.
BOTH = {
    "database": {"url": "postgres://guildhall:app@pg.internal:5432/guildhall", "backupUrl": BACKUP_URL},
    "backup": {"enabled": True},
    "auditVerify": {"enabled": True},
}
SQLITE_URL = "sqlite:///var/lib/guildhall/guildhall.db?mode=rwc"


def cronjob(objs, component: str) -> dict:
    (found,) = [o for o in all_of(objs, "CronJob") if o["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return found


def pod_template(cron: dict) -> dict:
    return cron["spec"]["jobTemplate"]["spec"]["template"]


def job_container(cron: dict) -> dict:
    (c,) = pod_template(cron)["spec"]["containers"]
    return c


def env_of(c: dict) -> dict:
    return {e["name"]: e for e in c["env"]}


def selects(selector: dict, labels: dict) -> bool:
    """Whether a Kubernetes label selector (matchLabels and matchExpressions; a Service's
    selector is a plain map) selects a pod with `labels`."""
    match_labels = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@pytest.fixture(params=["production", "backups"])
def cronjob_values(request):
    return request.param, {"production": production_values, "backups": backup_values}[request.param]()


# Off by default; each on by its own value ----------------------------------------------


def test_cronjobs_are_off_by_default() -> None:
    objs = render_objects(None)
    assert not all_of(objs, "CronJob")
    assert not all_of(objs, "PersistentVolumeClaim")
    assert [p["metadata"]["name"] for p in all_of(objs, "NetworkPolicy")] == ["guildhall"]


@pytest.mark.parametrize(
    ("values", "components"),
    [
        ({"backup": {"enabled": True}, "database": {"backupUrl": BACKUP_URL}}, {"backup"}),
        ({"auditVerify": {"enabled": True}}, {"audit-verify"}),
        (BOTH, {"backup", "audit-verify"}),
    ],
    ids=["backup", "audit-verify", "both"],
)
def test_each_cronjob_renders_only_when_enabled(values, components) -> None:
    objs = render_objects(values)
    found = {c["metadata"]["labels"]["app.kubernetes.io/component"] for c in all_of(objs, "CronJob")}
    assert found == components
    # The chart's claim comes with the backup CronJob only.
    assert bool(all_of(objs, "PersistentVolumeClaim")) == ("backup" in components)
    assert only(objs, "NetworkPolicy", "guildhall-jobs")


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_cronjobs_validate_against_kubernetes_schemas(cronjob_values, kube_version) -> None:
    name, values = cronjob_values
    objs = render_objects(values)
    checked = []
    for obj in objs:
        if obj["kind"] in {"CronJob", "PersistentVolumeClaim", "NetworkPolicy", "Secret"}:
            kubernetes_validate.validate(obj, kube_version, strict=True)
            checked.append((obj["kind"], obj["metadata"]["name"]))
    assert ("CronJob", "guildhall-backup") in checked and ("CronJob", "guildhall-audit-verify") in checked, (name, checked)
    assert ("NetworkPolicy", "guildhall-jobs") in checked, (name, checked)


def test_lint_strict_is_clean_with_the_cronjobs() -> None:
    for values in (BOTH, production_values()):
        report = lint_findings(values)
        problems = [m for m in report["messages"] if m["severity"] > SEVERITY_INFO]
        assert not problems and not report["errors"], (problems, report["errors"])


# Jobs -------------------------------------------------------------------------------------


def test_cronjobs_never_overlap_and_keep_their_history(cronjob_values) -> None:
    name, values = cronjob_values
    objs = render_objects(values)
    for component, key in (("backup", "backup"), ("audit-verify", "auditVerify")):
        cron = cronjob(objs, component)
        spec = cron["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", (name, component)
        assert spec["schedule"] == values[key].get("schedule", {"backup": "30 2 * * *", "auditVerify": "15 3 * * *"}[key])
        assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
        job = spec["jobTemplate"]["spec"]
        assert job["backoffLimit"] == 1
        assert job["activeDeadlineSeconds"] == {"backup": 3600, "auditVerify": 1800}[key]
        assert pod_template(cron)["spec"]["restartPolicy"] == "Never"
        assert cron["metadata"]["name"] == {"backup": "guildhall-backup", "audit-verify": "guildhall-audit-verify"}[component]


def test_cronjob_values_reach_the_objects() -> None:
    values = merged(
        BOTH,
        backup={"schedule": "0 */6 * * *", "retain": 28, "backoffLimit": 0, "activeDeadlineSeconds": 7200,
                "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 5,
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "image": {"repository": "registry.example.org/mirror/postgres", "tag": "16.4-alpine"}},
        auditVerify={"schedule": "@daily", "backoffLimit": 3, "activeDeadlineSeconds": 60, "failedJobsHistoryLimit": 7},
    )
    objs = render_objects(values)
    backup = cronjob(objs, "backup")
    assert backup["spec"]["schedule"] == "0 */6 * * *"
    assert backup["spec"]["successfulJobsHistoryLimit"] == 1 and backup["spec"]["failedJobsHistoryLimit"] == 5
    assert backup["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert backup["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 7200
    c = job_container(backup)
    assert c["image"] == "registry.example.org/mirror/postgres:16.4-alpine"
    assert c["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert env_of(c)["BACKUP_RETAIN"]["value"] == "28"
    audit = cronjob(objs, "audit-verify")
    assert audit["spec"]["schedule"] == "@daily"
    assert audit["spec"]["failedJobsHistoryLimit"] == 7
    assert audit["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 3
    assert audit["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 60
    digest = "sha256:" + "ab" * 32
    pinned = render_objects(merged(BOTH, backup={"image": {"digest": digest}}))
    assert job_container(cronjob(pinned, "backup"))["image"] == f"postgres@{digest}"


def test_backup_image_is_an_official_postgres_alpine_image_by_default() -> None:
    c = job_container(cronjob(render_objects(BOTH), "backup"))
    assert c["image"] == "postgres:17-alpine"
    assert c["imagePullPolicy"] == "IfNotPresent"


# Security ---------------------------------------------------------------------------------


def test_cronjob_pods_are_secured_like_the_server(cronjob_values) -> None:
    name, values = cronjob_values
    objs = render_objects(values)
    server_pod = deployment(objs)["spec"]["template"]["spec"]
    for component in ("backup", "audit-verify"):
        pod = pod_template(cronjob(objs, component))["spec"]
        c = job_container(cronjob(objs, component))
        ctx = c["securityContext"]
        where = (name, component)
        assert ctx["runAsNonRoot"] is True, where
        assert ctx["runAsUser"] == 10001, where
        assert ctx["readOnlyRootFilesystem"] is True, where
        assert ctx["allowPrivilegeEscalation"] is False, where
        assert ctx["privileged"] is False, where
        assert ctx["capabilities"] == {"drop": ["ALL"]}, where
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert ctx == container(deployment(objs))["securityContext"], where
        assert pod["securityContext"] == server_pod["securityContext"], where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["enableServiceLinks"] is False, where
        # The root filesystem is read-only: /tmp is an emptyDir with a size bound.
        volumes = {v["name"]: v for v in pod["volumes"]}
        tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
        assert volumes[tmp["name"]]["emptyDir"]["sizeLimit"] == "256Mi", where
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], where


def test_cronjob_pods_get_the_extra_volumes() -> None:
    """A CA bundle for the database's TLS (extraVolumes) is where a URL names it."""
    values = merged(
        BOTH,
        extraVolumes=[{"name": "db-ca", "secret": {"secretName": "pg-ca"}}],
        extraVolumeMounts=[{"name": "db-ca", "mountPath": "/etc/guildhall-db-ca", "readOnly": True}],
    )
    objs = render_objects(values)
    for component in ("backup", "audit-verify"):
        cron = cronjob(objs, component)
        assert {"name": "db-ca", "secret": {"secretName": "pg-ca"}} in pod_template(cron)["spec"]["volumes"]
        assert {"name": "db-ca", "mountPath": "/etc/guildhall-db-ca", "readOnly": True} in job_container(cron)["volumeMounts"]


# The backup volume and URL -------------------------------------------------------------


def test_backup_writes_to_a_claim_the_chart_creates_and_keeps() -> None:
    objs = render_objects(merged(BOTH, backup={"persistence": {"storageClass": "fast-ssd", "size": "50Gi"}}))
    claim = only(objs, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "guildhall-backups"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "dumps outlive the release"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert not is_hook(claim)
    cron = cronjob(objs, "backup")
    volumes = {v["name"]: v for v in pod_template(cron)["spec"]["volumes"]}
    c = job_container(cron)
    (mount,) = [m for m in c["volumeMounts"] if m["name"] in volumes and "persistentVolumeClaim" in volumes[m["name"]]]
    assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == "guildhall-backups"
    assert not mount.get("readOnly")
    # The script writes where the claim is mounted.
    assert env_of(c)["BACKUP_DIR"]["value"] == mount["mountPath"] == "/backups"
    assert env_of(c)["BACKUP_RETAIN"]["value"] == "7"


def test_backup_writes_to_an_existing_claim() -> None:
    objs = render_objects(backup_values())
    assert not all_of(objs, "PersistentVolumeClaim"), "an existing claim: the chart creates none"
    volumes = pod_template(cronjob(objs, "backup"))["spec"]["volumes"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]
    assert claims == ["guildhall-dumps"]


def test_backup_runs_pg_dump_in_custom_format() -> None:
    c = job_container(cronjob(render_objects(BOTH), "backup"))
    shell, flag, script = c["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    assert "args" not in c
    assert 'pg_dump --format=custom --no-password --exclude-table-data=compiled_artefacts --file="$partial" --dbname="$DATABASE_URL"' in script
    assert "set -eu" in script


def test_backup_url_comes_from_the_chart_secret() -> None:
    objs = render_objects(BOTH)
    ref = env_of(job_container(cronjob(objs, "backup")))["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    server_ref = container(deployment(objs))["env"][0]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == server_ref["name"], "the Secret the Deployment uses"
    secret = only([o for o in objs if not is_hook(o)], "Secret", ref["name"])
    assert secret_data(secret)[ref["key"]] == BACKUP_URL
    assert ref["key"] != server_ref["key"]
    # The server never gets it, and nothing outside Secrets carries it.
    assert all(e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") != ref["key"] for e in container(deployment(objs))["env"])
    assert "b4ckup" not in "\n".join(str(o) for o in objs if o["kind"] != "Secret")
    for hook in (o for o in objs if is_hook(o) and o["kind"] == "Secret"):
        assert "backupUrl" not in hook["data"], "the migration Job does not get it"


def test_backup_url_comes_from_an_existing_secret(value_set) -> None:
    name, values = value_set
    if not (values or {}).get("database", {}).get("existingSecret"):
        values = merged(values, database={"existingSecret": "guildhall-database"})
    values = merged(values, database={"existingSecretBackupKey": "backup-url"}, backup={"enabled": True})
    objs = render_objects(values)
    ref = env_of(job_container(cronjob(objs, "backup")))["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": values["database"]["existingSecret"], "key": "backup-url"}, name
    assert not [o for o in all_of(objs, "Secret") if not is_hook(o)], "the chart creates no Secret when one is named"


# The audit-verify CronJob runs the binary as the server does --------------------------


def test_audit_verify_runs_the_binary_with_the_servers_configuration(cronjob_values) -> None:
    name, values = cronjob_values
    objs = render_objects(values)
    cron = cronjob(objs, "audit-verify")
    c = job_container(cron)
    server = container(deployment(objs))
    assert c["image"] == server["image"], name
    assert c["args"] == ["--config", CONFIG_PATH, "audit", "verify"]
    assert "command" not in c, "the image's entrypoint is the binary"
    # The server's URL, from the server's Secret and key; nothing else of the database.
    assert [e["name"] for e in c["env"]] == ["GUILDHALL_DATABASE__URL"]
    assert c["env"][0] == server["env"][0]
    # The server's ConfigMap (not a hook's, which is gone once the migration succeeds).
    pod = pod_template(cron)["spec"]
    config_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/guildhall")
    config_volume = next(v for v in pod["volumes"] if v["name"] == config_mount["name"])
    server_pod = deployment(objs)["spec"]["template"]["spec"]
    server_config = next(v for v in server_pod["volumes"] if v["name"] == "config")
    assert config_volume["configMap"] == server_config["configMap"]
    assert config_mount["readOnly"] is True
    configmap = only([o for o in objs if not is_hook(o)], "ConfigMap", config_volume["configMap"]["name"])
    assert "guildhall.toml" in configmap["data"]


# Selection: the CronJobs' pods are never the server -----------------------------------


def test_cronjob_pods_are_never_selected_as_the_server(cronjob_values) -> None:
    name, values = cronjob_values
    objs = render_objects(values)
    server_labels = deployment(objs)["spec"]["template"]["metadata"]["labels"]
    service = only(objs, "Service")
    pdb = only(objs, "PodDisruptionBudget")
    server_policy = only(objs, "NetworkPolicy", "guildhall")
    selectors = {
        "Service": service["spec"]["selector"],
        "PodDisruptionBudget": pdb["spec"]["selector"],
        "Deployment": deployment(objs)["spec"]["selector"],
        "server NetworkPolicy": server_policy["spec"]["podSelector"],
    }
    for what, selector in selectors.items():
        assert selects(selector, server_labels), f"{name}: the {what} selector must select the server (the check can fail)"
    for component in ("backup", "audit-verify"):
        labels = pod_template(cronjob(objs, component))["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == component
        for what, selector in selectors.items():
            assert not selects(selector, labels), f"{name}: the {what} selects the {component} pods"
    # An autoscaler scales the Deployment by name, not by labels.
    for hpa in all_of(objs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment(objs)["metadata"]["name"]}


def test_selector_matching_can_fail() -> None:
    selector = {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "c", "operator": "In", "values": ["x", "y"]}]}
    assert selects(selector, {"a": "1", "c": "y"})
    assert not selects(selector, {"a": "1", "c": "z"})
    assert not selects(selector, {"a": "2", "c": "x"})
    assert selects({"a": "1"}, {"a": "1", "b": "2"}) and not selects({"a": "1"}, {"a": "2"})


def test_network_policy_lets_the_cronjobs_reach_the_database_and_nothing_reach_them(cronjob_values) -> None:
    name, values = cronjob_values
    objs = render_objects(values)
    policies = all_of(objs, "NetworkPolicy")
    egress_values = values.get("networkPolicy", {}).get("egress", {})
    database_to = egress_values.get("database", {}).get("to")
    for component in ("backup", "audit-verify"):
        labels = pod_template(cronjob(objs, component))["metadata"]["labels"]
        applying = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert [p["metadata"]["name"] for p in applying] == ["guildhall-jobs"], (name, component)
        (policy,) = applying
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        assert not policy["spec"].get("ingress"), "nothing reaches the CronJobs' pods"
        egress = policy["spec"]["egress"]
        ports = [(p["port"], p["protocol"]) for rule in egress for p in rule["ports"]]
        assert sorted(ports, key=str) == sorted([(53, "UDP"), (53, "TCP"), (5432, "TCP")], key=str), (name, ports)
        database_rule = next(r for r in egress if r["ports"] == [{"port": 5432, "protocol": "TCP"}])
        assert database_rule.get("to") == database_to, "the same database peers as the server's"
        # Exactly the server's DNS and database rules.
        server_egress = only(objs, "NetworkPolicy", "guildhall")["spec"]["egress"]
        assert all(rule in server_egress for rule in egress)


def test_network_policy_follows_the_database_ports() -> None:
    values = merged(BOTH, networkPolicy={"egress": {"database": {"ports": [6432], "to": [{"ipBlock": {"cidr": "10.30.4.0/24"}}]}}})
    egress = only(render_objects(values), "NetworkPolicy", "guildhall-jobs")["spec"]["egress"]
    assert {"ports": [{"port": 6432, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.30.4.0/24"}}]} in egress


def test_no_network_policy_for_the_cronjobs_when_network_policies_are_off() -> None:
    assert not all_of(render_objects(merged(BOTH, networkPolicy={"enabled": False})), "NetworkPolicy")


# Names ------------------------------------------------------------------------------------


def test_cronjob_names_fit_with_a_long_release_name() -> None:
    """A CronJob's name is at most 52 characters (its Jobs add 11)."""
    release = "councils-production-north-downs-and-the-marches-alliance"
    objs = render_objects(BOTH, name=release)
    names = [c["metadata"]["name"] for c in all_of(objs, "CronJob")]
    assert len(names) == 2 and len(set(names)) == 2
    assert all(len(n) <= 52 for n in names), names
    assert {n.rsplit("-", 1)[-1] for n in names} == {"backup", "verify"}
    for obj in objs:
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)


# Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"backup": {"retian": 3}},
        {"backup": {"enable": True}},
        {"backup": {"persistence": {"existingClaimName": "dumps"}}},
        {"backup": {"image": {"tags": "17-alpine"}}},
        {"backup": {"resources": {"limit": {"memory": "1Gi"}}}},
        {"auditVerify": {"scheduel": "0 3 * * *"}},
        {"backup": {"retain": 0}},
        {"backup": {"retain": "7"}},
        {"backup": {"schedule": "daily"}},
        {"backup": {"schedule": "0 3 * * * *"}},
        {"auditVerify": {"schedule": ""}},
        {"backup": {"image": {"tag": "", "digest": ""}}},
        {"backup": {"image": {"digest": "sha256:nothex"}}},
        {"database": {"backupURL": BACKUP_URL}},
    ],
    ids=["retain-typo", "enabled-typo", "claim-typo", "image-typo", "resources-typo", "audit-schedule-typo",
         "retain-zero", "retain-string", "schedule-word", "schedule-six-fields", "schedule-empty",
         "no-image-tag", "bad-digest", "backup-url-typo"],
)
def test_backup_values_are_checked_by_the_schema(values) -> None:
    with pytest.raises(helm.HelmValuesError):
        render(values)


def test_schema_refusal_names_the_typo() -> None:
    report = lint_findings({"backup": {"retian": 3}})
    assert any("retian" in e for e in report["errors"]), report["errors"]


@pytest.mark.parametrize(
    "values",
    [
        {"backup": {"enabled": True}},
        {"backup": {"enabled": True}, "database": {"existingSecret": "db"}},
        {"backup": {"enabled": True}, "database": {"existingSecret": "db", "backupUrl": BACKUP_URL}},
    ],
    ids=["no-backup-url", "existing-secret-without-key", "url-ignored-with-existing-secret"],
)
def test_backup_needs_a_url_that_can_read_every_row(values, tmp_path) -> None:
    """Neither the server's role nor the owner can dump (forced row-level security), so the
    backup URL is never a fallback to them."""
    with pytest.raises(helm.HelmValuesError):
        render(values)
    with pytest.raises(helm.HelmRenderError, match="BYPASSRLS"):
        render(values, chart=chart_without_schema(tmp_path))


@pytest.mark.parametrize("key", ["backup", "auditVerify"])
def test_cronjobs_are_refused_with_sqlite(key, tmp_path) -> None:
    values = {"replicaCount": 1, "database": {"url": SQLITE_URL, "backupUrl": BACKUP_URL}, "persistence": {"enabled": True}, key: {"enabled": True}}
    with pytest.raises(helm.HelmValuesError):
        render(values)
    with pytest.raises(helm.HelmRenderError, match=f"{key}.enabled"):
        render(values, chart=chart_without_schema(tmp_path))


# NOTES.txt ---------------------------------------------------------------------------------


def test_notes_say_how_to_take_a_backup_now() -> None:
    text = notes(BOTH)
    assert "create job --from=cronjob/guildhall-backup" in text
    assert "guildhall-backups" in text
    assert "guildhall-audit-verify" in text
    assert "Backups:" not in notes(None) and "Audit chains:" not in notes(None)
