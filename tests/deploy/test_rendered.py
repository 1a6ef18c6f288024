"""Properties of the rendered objects that a cluster would not check for us: probes, the
security context, writable paths, shutdown timing, the migration hook, the database Secret,
what the ingress publishes, telemetry and metering, and the refusals (SQLite with several
replicas, unknown configuration keys, bad telemetry and metering values). The console's
values are in test_console.py."""

from __future__ import annotations

import helm_python as helm
import pytest

from conftest import (
    CONFIG_PATH,
    all_of,
    chart_without_schema,
    container,
    deployment,
    is_hook,
    merged,
    migration_job,
    notes,
    only,
    production_values,
    render,
    render_objects,
    secret_data,
    server_toml,
    server_toml_text,
)

SQLITE_URL = "sqlite:///var/lib/guildhall/guildhall.db?mode=rwc"
CACHE_DIR = "/var/cache/guildhall"


def workloads(objs):
    """The server Deployment and the migration Job: both run the binary."""
    return [deployment(objs), migration_job(objs)]


# Probes and ports -------------------------------------------------------------------------


def test_probes_use_healthz_and_readyz_on_the_http_port(value_set) -> None:
    _, values = value_set
    objs = render_objects(values)
    c = container(deployment(objs))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    (port,) = c["ports"]
    assert port == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    # The startup probe covers migrations on start before liveness can kill the pod.
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_server_listens_on_all_interfaces_at_the_container_port(value_set) -> None:
    _, values = value_set
    objs = render_objects(values)
    assert server_toml(objs)["listen"] == "0.0.0.0:8080"
    c = container(deployment(objs))
    assert c["args"] == ["--config", CONFIG_PATH, "serve"]
    service = only(objs, "Service")
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"


def test_listen_follows_container_port() -> None:
    objs = render_objects({"containerPort": 9090})
    assert server_toml(objs)["listen"] == "0.0.0.0:9090"
    assert container(deployment(objs))["ports"][0]["containerPort"] == 9090


# Security ---------------------------------------------------------------------------------


def test_security_context(value_set) -> None:
    _, values = value_set
    for workload in workloads(render_objects(values)):
        pod = workload["spec"]["template"]["spec"]
        c = container(workload)
        ctx = c["securityContext"]
        kind = workload["kind"]
        assert ctx["runAsNonRoot"] is True, kind
        assert ctx["runAsUser"] == 10001, kind
        assert ctx["readOnlyRootFilesystem"] is True, kind
        assert ctx["allowPrivilegeEscalation"] is False, kind
        assert ctx["capabilities"]["drop"] == ["ALL"], kind
        assert "add" not in ctx["capabilities"], kind
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["runAsUser"] == 10001, kind
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        assert pod["automountServiceAccountToken"] is False, kind


def test_service_links_are_off(value_set) -> None:
    """Kubernetes injects GUILDHALL_SERVICE_HOST and friends for a Service named guildhall;
    the server reads every GUILDHALL_… variable as configuration and refuses unknown keys."""
    _, values = value_set
    for workload in workloads(render_objects(values)):
        assert workload["spec"]["template"]["spec"]["enableServiceLinks"] is False, workload["kind"]


def test_service_account_never_mounts_a_token(value_set) -> None:
    _, values = value_set
    account = only(render_objects(values), "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_writable_paths_are_empty_dirs(value_set) -> None:
    """With a read-only root filesystem, everything the binary writes (compile cache, /tmp) is
    on an emptyDir, and runtime.cache_dir points into it."""
    _, values = value_set
    objs = render_objects(values)
    assert server_toml(objs)["runtime"]["cache_dir"] == CACHE_DIR
    for workload in workloads(objs):
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in container(workload)["volumeMounts"]}
        assert set(mounts) == {CONFIG_PATH.rsplit("/", 1)[0], CACHE_DIR, "/tmp"}, workload["kind"]
        for path in (CACHE_DIR, "/tmp"):
            volume = volumes[mounts[path]["name"]]
            assert "emptyDir" in volume, (workload["kind"], path, volume)
            assert volume["emptyDir"].get("sizeLimit"), (workload["kind"], path)
        config = mounts["/etc/guildhall"]
        assert config["readOnly"] is True
        assert "configMap" in volumes[config["name"]]


def test_extra_volumes_mount_in_the_server() -> None:
    values = {
        "extraVolumes": [{"name": "db-ca", "secret": {"secretName": "pg-ca"}}],
        "extraVolumeMounts": [{"name": "db-ca", "mountPath": "/etc/guildhall-db-ca", "readOnly": True}],
    }
    dep = deployment(render_objects(values))
    assert {"name": "db-ca", "secret": {"secretName": "pg-ca"}} in dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "db-ca", "mountPath": "/etc/guildhall-db-ca", "readOnly": True} in container(dep)["volumeMounts"]


def test_resources_have_requests_and_limits(value_set) -> None:
    _, values = value_set
    resources = container(deployment(render_objects(values)))["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


# Shutdown ---------------------------------------------------------------------------------


def shutdown_timing(objs):
    pod = deployment(objs)["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    sleep = container(deployment(objs))["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = server_toml(objs)["http"]["shutdown_grace_secs"]
    return grace, sleep, drain


# Seconds the grace period leaves after the pre-stop sleep and the drain by default, for the
# last metering flush (a database write) and the last spans.
AFTER_DRAIN = 15


def test_grace_period_covers_the_pre_stop_sleep_the_drain_and_the_last_flush(value_set) -> None:
    _, values = value_set
    grace, sleep, drain = shutdown_timing(render_objects(values))
    assert 0 < sleep <= 10
    assert drain == 25
    assert grace == sleep + drain + AFTER_DRAIN


def test_grace_period_follows_shutdown_grace_secs() -> None:
    grace, sleep, drain = shutdown_timing(render_objects({"config": {"http": {"shutdown_grace_secs": 60}}}))
    assert drain == 60
    assert grace == sleep + drain + AFTER_DRAIN


def test_a_grace_period_shorter_than_the_drain_is_refused() -> None:
    with pytest.raises(helm.HelmRenderError, match="terminationGracePeriodSeconds"):
        render({"terminationGracePeriodSeconds": 25})


def test_a_grace_period_without_time_for_the_last_flush_is_refused() -> None:
    """Covering sleep + drain (30 s) is not enough: the last metering counts are written
    after the drain."""
    with pytest.raises(helm.HelmRenderError, match="metering"):
        render({"terminationGracePeriodSeconds": 31})
    grace, sleep, drain = shutdown_timing(render_objects({"terminationGracePeriodSeconds": 35}))
    assert grace == sleep + drain + 5


# The migration hook -----------------------------------------------------------------------


def test_migration_job_is_a_pre_install_pre_upgrade_hook(value_set) -> None:
    _, values = value_set
    objs = render_objects(values)
    job = migration_job(objs)
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
    job_weight = int(annotations["helm.sh/hook-weight"])
    c = container(job)
    assert c["args"] == ["--config", CONFIG_PATH, "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # What the Job mounts exists before it: its ConfigMap (and Secret) are earlier hooks.
    pod = job["spec"]["template"]["spec"]
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    hooks = {(o["kind"], o["metadata"]["name"]): o for o in objs if is_hook(o) and o["kind"] != "Job"}
    config_map = hooks[("ConfigMap", config_volume["configMap"]["name"])]
    assert int(config_map["metadata"]["annotations"]["helm.sh/hook-weight"]) < job_weight
    assert config_map["data"]["guildhall.toml"] == server_toml_text(objs), "the Job loads the server's configuration"
    ref = c["env"][0]["valueFrom"]["secretKeyRef"]
    if ("Secret", ref["name"]) in hooks:
        assert int(hooks[("Secret", ref["name"])]["metadata"]["annotations"]["helm.sh/hook-weight"]) < job_weight
    # The Job does not use the release's ServiceAccount, which a pre-install hook precedes.
    assert "serviceAccountName" not in pod


def test_migrations_use_the_admin_url_when_given() -> None:
    objs = render_objects({"database": {"url": "postgres://app:a@db/g", "adminUrl": "postgres://owner:o@db/g"}})
    job = migration_job(objs)
    app, admin = container(job)["env"]
    assert (app["name"], admin["name"]) == ("GUILDHALL_DATABASE__URL", "GUILDHALL_DATABASE__ADMIN_URL")

    def value(env: dict) -> str:
        ref = env["valueFrom"]["secretKeyRef"]
        secret = next(o for o in all_of(objs, "Secret") if o["metadata"]["name"] == ref["name"])
        return secret_data(secret)[ref["key"]]

    # Migrations run as the owner and grant the application's role what it needs.
    assert value(admin) == "postgres://owner:o@db/g"
    assert value(app) == "postgres://app:a@db/g"
    # The server never receives the owner URL.
    server_env = container(deployment(objs))["env"]
    server_ref = server_env[0]["valueFrom"]["secretKeyRef"]
    server_secret = next(o for o in all_of(objs, "Secret") if o["metadata"]["name"] == server_ref["name"])
    assert secret_data(server_secret)[server_ref["key"]] == "postgres://app:a@db/g"
    assert all("ADMIN" not in e["name"] for e in server_env)


def test_migrations_use_the_app_url_otherwise(value_set) -> None:
    _, values = value_set
    database = (values or {}).get("database", {})
    if database.get("adminUrl") or database.get("existingSecretAdminKey"):
        # The production example names an owner role; that case is tested above and below.
        assert "GUILDHALL_DATABASE__ADMIN_URL" in [
            e["name"] for e in container(migration_job(render_objects(values)))["env"]
        ]
        return
    objs = render_objects(values)
    job_env = container(migration_job(objs))["env"]
    assert [e["name"] for e in job_env] == ["GUILDHALL_DATABASE__URL"]
    job_ref = job_env[0]["valueFrom"]["secretKeyRef"]
    server_ref = container(deployment(objs))["env"][0]["valueFrom"]["secretKeyRef"]
    if values and values.get("database", {}).get("existingSecret"):
        assert job_ref == server_ref
    else:
        job_secret = next(o for o in all_of(objs, "Secret") if o["metadata"]["name"] == job_ref["name"])
        server_secret = next(o for o in all_of(objs, "Secret") if o["metadata"]["name"] == server_ref["name"])
        assert secret_data(job_secret)[job_ref["key"]] == secret_data(server_secret)[server_ref["key"]]


def test_migrations_with_an_existing_secret_admin_key() -> None:
    objs = render_objects({"database": {"existingSecret": "db", "existingSecretAdminKey": "owner"}})
    app, admin = container(migration_job(objs))["env"]
    assert app["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "url"}
    assert admin["name"] == "GUILDHALL_DATABASE__ADMIN_URL"
    assert admin["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "owner"}
    assert not all_of(objs, "Secret"), "the chart creates no Secret when one is named"


# The database Secret ----------------------------------------------------------------------


def test_database_url_comes_from_the_chart_secret() -> None:
    url = "postgres://guildhall:s3cret@pg.internal:5432/guildhall"
    objs = render_objects({"database": {"url": url}})
    (env,) = container(deployment(objs))["env"]
    assert env["name"] == "GUILDHALL_DATABASE__URL"
    ref = env["valueFrom"]["secretKeyRef"]
    secret = only([o for o in objs if not is_hook(o)], "Secret", ref["name"])
    assert secret_data(secret)[ref["key"]] == url
    for config_map in all_of(objs, "ConfigMap"):
        assert "s3cret" not in config_map["data"]["guildhall.toml"]
        assert "url" not in server_toml(objs)["database"]


def test_nothing_outside_secrets_derives_from_the_password() -> None:
    """No annotation or ConfigMap carries the URL or a hash of it (a hash would let anyone
    who can read pods test password guesses offline)."""
    import hashlib  # noqa: PLC0415

    url = "postgres://guildhall:s3cret@pg.internal:5432/guildhall"
    objs = render_objects({"database": {"url": url, "adminUrl": url.replace("guildhall:", "owner:")}})
    text = "\n".join(str(o) for o in objs if o["kind"] != "Secret")
    assert "s3cret" not in text
    for candidate in (url, url + "\n"):
        assert hashlib.sha256(candidate.encode()).hexdigest() not in text


def test_database_url_comes_from_an_existing_secret() -> None:
    objs = render_objects(production_values())
    ref = container(deployment(objs))["env"][0]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "guildhall-database", "key": "url"}
    assert not all_of(objs, "Secret")


def test_a_database_url_is_required() -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"database": {"url": "", "existingSecret": ""}})


def test_config_change_rolls_the_pods() -> None:
    def checksum(values):
        return deployment(render_objects(values))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(None) != checksum({"config": {"runtime": {"tenant_concurrency": 8}}})
    assert checksum(None) == checksum({"replicaCount": 3})


# Replicas, SQLite, PDB, HPA ---------------------------------------------------------------


def test_defaults_run_several_replicas_against_postgres() -> None:
    objs = render_objects(None)
    dep = deployment(objs)
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (env,) = container(dep)["env"]
    secret = only(objs, "Secret", env["valueFrom"]["secretKeyRef"]["name"])
    assert secret_data(secret)["url"].startswith("postgres://")


@pytest.mark.parametrize("replicas", [2, 5])
def test_sqlite_with_several_replicas_is_refused_by_the_schema(replicas) -> None:
    with pytest.raises(helm.HelmValuesError, match="replicaCount"):
        render({"replicaCount": replicas, "database": {"url": SQLITE_URL}})


def test_sqlite_with_autoscaling_is_refused_by_the_schema() -> None:
    with pytest.raises(helm.HelmValuesError, match="autoscaling"):
        render({"replicaCount": 1, "autoscaling": {"enabled": True}, "database": {"url": SQLITE_URL}})


def test_sqlite_with_several_replicas_is_refused_without_the_schema(tmp_path) -> None:
    """`--skip-schema-validation` does not get past the templates' own check."""
    chart = chart_without_schema(tmp_path)
    with pytest.raises(helm.HelmRenderError, match="SQLite supports a single replica"):
        render({"database": {"url": SQLITE_URL}}, chart=chart)
    with pytest.raises(helm.HelmRenderError, match="SQLite supports a single replica"):
        render({"replicaCount": 1, "autoscaling": {"enabled": True}, "database": {"url": SQLITE_URL}}, chart=chart)


def test_sqlite_single_replica_recreates_and_skips_the_migration_job() -> None:
    objs = render_objects({"replicaCount": 1, "database": {"url": SQLITE_URL}, "persistence": {"enabled": True}})
    dep = deployment(objs)
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert not all_of(objs, "Job"), "the server migrates its own SQLite file on start"
    assert not all_of(objs, "PodDisruptionBudget")
    mounts = {m["mountPath"] for m in container(dep)["volumeMounts"]}
    assert "/var/lib/guildhall" in mounts
    claim = only(objs, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_pdb_when_more_than_one_replica(value_set) -> None:
    _, values = value_set
    objs = render_objects(values)
    pdb = only(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] >= 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment(objs)["spec"]["selector"]["matchLabels"]


def test_no_pdb_for_a_single_replica() -> None:
    assert not all_of(render_objects({"replicaCount": 1}), "PodDisruptionBudget")
    pdb = only(render_objects({"replicaCount": 1, "autoscaling": {"enabled": True, "minReplicas": 2}}), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_autoscaling_owns_the_replica_count() -> None:
    objs = render_objects(production_values())
    dep = deployment(objs)
    assert "replicas" not in dep["spec"], "the HPA sets replicas; the Deployment must not fight it"
    hpa = only(objs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] == 3


# Ingress, network policy ------------------------------------------------------------------


def ingress_routes(paths, url_path: str) -> bool:
    """Whether any of an ingress rule's `paths` sends `url_path` to the server. Prefix matches
    whole path segments; ImplementationSpecific is taken as a plain string prefix, the widest
    reading."""
    for p in paths:
        path, kind = p["path"], p["pathType"]
        if kind == "Exact":
            hit = url_path == path
        elif kind == "Prefix":
            base = path.rstrip("/")
            hit = base == "" or url_path == base or url_path.startswith(base + "/")
        else:
            hit = url_path.startswith(path)
        if hit:
            return True
    return False


# What the ingress publishes, and what needs no credentials and stays inside the cluster.
PUBLISHED = [
    "/api/v1/tenants",
    "/api/openapi.json",
    "/s/north-downs/tandridge/hello/",
    "/console",
    "/console/sign-in/callback",
    "/console/static/init.js",
    "/assets/govuk-frontend/0123456789abcdef/govuk-frontend.min.css",
]
INSIDE_THE_CLUSTER = ["/metrics", "/healthz", "/readyz"]


def test_ingress_keeps_metrics_and_probes_inside_the_cluster(value_set) -> None:
    """/metrics, /healthz and /readyz need no credentials: the ingress routes only the API,
    the services, the console and the GOV.UK Frontend assets its pages and the services'
    load."""
    _, values = value_set
    objs = render_objects(merged(values, ingress={"enabled": True}))
    for rule in only(objs, "Ingress")["spec"]["rules"]:
        paths = rule["http"]["paths"]
        assert {(p["path"], p["pathType"]) for p in paths} == {("/api", "Prefix"), ("/s", "Prefix"), ("/console", "Prefix"), ("/assets", "Prefix")}, paths
        for url_path in PUBLISHED:
            assert ingress_routes(paths, url_path), f"{rule['host']} does not route {url_path}"
        for url_path in INSIDE_THE_CLUSTER:
            assert not ingress_routes(paths, url_path), f"{rule['host']} routes {url_path}"


def test_ingress_route_matching_can_fail() -> None:
    """The check above can fail: `/` publishes everything, and a Prefix matches whole segments
    only (/s does not route /static)."""
    everything = [{"path": "/", "pathType": "Prefix"}]
    assert all(ingress_routes(everything, p) for p in INSIDE_THE_CLUSTER)
    assert not ingress_routes([{"path": "/s", "pathType": "Prefix"}], "/static")
    assert not ingress_routes([{"path": "/console", "pathType": "Exact"}], "/console/sign-in/callback")


def test_production_ingress_has_tls() -> None:
    objs = render_objects(production_values())
    ingress = only(objs, "Ingress")
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"]
    for path in rule["http"]["paths"]:
        assert path["backend"]["service"] == {"name": only(objs, "Service")["metadata"]["name"], "port": {"name": "http"}}
    assert not all_of(render_objects(None), "Ingress"), "off by default"
    # The console's public URL is that host, over TLS, and the ingress routes its callback.
    assert server_toml(objs)["console"]["public_url"] == f"https://{rule['host']}"
    assert ingress_routes(rule["http"]["paths"], "/console/sign-in/callback")
    for url_path in INSIDE_THE_CLUSTER:
        assert not ingress_routes(rule["http"]["paths"], url_path)


def test_network_policy_admits_only_the_http_port(value_set) -> None:
    _, values = value_set
    objs = render_objects(values)
    policy = only(objs, "NetworkPolicy", "guildhall")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["spec"]["podSelector"]["matchLabels"] == deployment(objs)["spec"]["selector"]["matchLabels"]
    for rule in policy["spec"]["ingress"]:
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    egress_ports = [(p["port"], p.get("protocol")) for rule in policy["spec"]["egress"] for p in rule.get("ports", [])]
    assert (53, "UDP") in egress_ports and (53, "TCP") in egress_ports
    assert (5432, "TCP") in egress_ports
    assert all(rule.get("ports") for rule in policy["spec"]["egress"]), "no rule opens every port by default"


def test_network_policy_reaches_the_collector_only_with_telemetry(value_set) -> None:
    _, values = value_set
    objs = render_objects(values)
    telemetry = (values or {}).get("telemetry", {})
    egress = only(objs, "NetworkPolicy", "guildhall")["spec"]["egress"]
    to_collector = [r for r in egress if r.get("ports") == [{"port": 4318, "protocol": "TCP"}]]
    if telemetry.get("enabled"):
        (rule,) = to_collector
        assert rule["to"] == values["networkPolicy"]["egress"]["telemetry"]["to"]
    else:
        assert not to_collector
        assert len(egress) == len(only(render_objects(merged(values, telemetry={"enabled": True, "otlpEndpoint": "http://otel:4318"})), "NetworkPolicy", "guildhall")["spec"]["egress"]) - 1


@pytest.mark.parametrize(
    ("endpoint", "port"),
    [("http://otel-collector.monitoring:4318", 4318), ("http://otel-collector/", 80), ("http://[fd00::7]:9418/", 9418)],
)
def test_network_policy_opens_the_collectors_port(endpoint, port) -> None:
    objs = render_objects({"telemetry": {"enabled": True, "otlpEndpoint": endpoint}})
    egress = only(objs, "NetworkPolicy")["spec"]["egress"]
    rule = next(r for r in egress if r.get("ports") == [{"port": port, "protocol": "TCP"}])
    assert "to" not in rule, "without networkPolicy.egress.telemetry.to: any address on the port"


def test_network_policy_outbound_can_be_closed() -> None:
    open_policy = only(render_objects(None), "NetworkPolicy")
    closed = only(render_objects({"networkPolicy": {"egress": {"outbound": {"enabled": False}}}}), "NetworkPolicy")
    assert len(closed["spec"]["egress"]) == len(open_policy["spec"]["egress"]) - 1
    outbound = open_policy["spec"]["egress"][-1]
    v4 = outbound["to"][0]["ipBlock"]
    assert v4["cidr"] == "0.0.0.0/0"
    assert "169.254.0.0/16" in v4["except"], "cloud metadata services stay unreachable"


# Configuration ----------------------------------------------------------------------------


def test_optional_sections_are_rendered_only_when_enabled(value_set) -> None:
    """auth.oidc and telemetry only when enabled; database.admin_url never (the server never gets it)."""
    _, values = value_set
    values = values or {}
    config = server_toml(render_objects(values))
    assert ("auth" in config) == bool(values.get("auth", {}).get("oidc", {}).get("enabled"))
    assert ("telemetry" in config) == bool(values.get("telemetry", {}).get("enabled"))
    assert "admin_url" not in config.get("database", {})
    assert "auth" not in server_toml(render_objects(None))
    assert "telemetry" not in server_toml(render_objects(None)), "no endpoint: no OpenTelemetry layer"


def test_optional_sections_render_when_enabled() -> None:
    values = {
        "auth": {"oidc": {"enabled": True, "id": "example-idp", "issuer": "https://idp.example.org", "audience": "guildhall", "jwksUrl": "https://idp.example.org/jwks"}},
        "telemetry": {"enabled": True, "otlpEndpoint": "http://otel-collector:4318"},
    }
    config = server_toml(render_objects(values))
    assert config["auth"]["oidc"] == [{"id": "example-idp", "issuer": "https://idp.example.org", "audience": "guildhall", "jwks_url": "https://idp.example.org/jwks"}]
    assert config["telemetry"] == {"otlp_endpoint": "http://otel-collector:4318", "service_name": "guildhall"}


def test_telemetry_service_name_defaults_to_the_release() -> None:
    values = {"telemetry": {"enabled": True, "otlpEndpoint": "http://otel-collector:4318"}}
    assert server_toml(render_objects(values, name="councils-prod"))["telemetry"]["service_name"] == "councils-prod-guildhall"
    values["telemetry"]["serviceName"] = "guildhall-north-downs"
    assert server_toml(render_objects(values))["telemetry"]["service_name"] == "guildhall-north-downs"


@pytest.mark.parametrize(
    "telemetry",
    [
        {"enabled": True},
        {"enabled": True, "otlpEndpoint": ""},
        {"enabled": True, "otlpEndpoint": "https://otel-collector:4318"},
        {"enabled": True, "otlpEndpoint": "otel-collector:4318"},
        {"enabled": True, "otlpEndpoint": "http://otel-collector:4318", "protocol": "grpc"},
    ],
    ids=["no-endpoint", "empty-endpoint", "https", "no-scheme", "unknown-key"],
)
def test_bad_telemetry_values_are_refused_by_the_schema(telemetry) -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"telemetry": telemetry})


@pytest.mark.parametrize("endpoint", ["", "https://otel-collector:4318"])
def test_bad_telemetry_endpoints_are_refused_without_the_schema(tmp_path, endpoint) -> None:
    """The binary refuses https (it speaks plain OTLP/HTTP); the templates say so first."""
    chart = chart_without_schema(tmp_path)
    with pytest.raises(helm.HelmRenderError, match="telemetry.otlpEndpoint"):
        render({"telemetry": {"enabled": True, "otlpEndpoint": endpoint}}, chart=chart)


def test_metering_is_rendered_with_the_binarys_defaults() -> None:
    """Always rendered, so the ConfigMap shows what the pods count with; the defaults are the
    binary's own (10 s flushes, £0.0001 per CPU second)."""
    config = server_toml(render_objects(None))
    assert config["metering"] == {"enabled": True, "flush_interval_secs": 10, "price_per_cpu_second": 0.0001}


@pytest.mark.parametrize(
    ("metering", "expected"),
    [
        ({"enabled": False}, {"enabled": False, "flush_interval_secs": 10, "price_per_cpu_second": 0.0001}),
        ({"flushIntervalSecs": 3600, "pricePerCpuSecond": 0.00002}, {"enabled": True, "flush_interval_secs": 3600, "price_per_cpu_second": 0.00002}),
        ({"flushIntervalSecs": 1, "pricePerCpuSecond": 0}, {"enabled": True, "flush_interval_secs": 1, "price_per_cpu_second": 0}),
        ({"pricePerCpuSecond": 1.5}, {"enabled": True, "flush_interval_secs": 10, "price_per_cpu_second": 1.5}),
    ],
    ids=["off", "hourly-small-price", "every-second-free", "whole-and-a-half"],
)
def test_metering_values_render(metering, expected) -> None:
    assert server_toml(render_objects({"metering": metering}))["metering"] == expected


@pytest.mark.parametrize(
    "metering",
    [
        {"flushIntervalSecs": 0},
        {"flushIntervalSecs": 3601},
        {"flushIntervalSecs": 2.5},
        {"flushIntervalSecs": "10"},
        {"pricePerCpuSecond": -0.0001},
        {"pricePerCpuSecond": "0.0001"},
        {"enabled": "yes"},
        {"flush_interval_secs": 10},
    ],
    ids=["interval-zero", "interval-over-an-hour", "interval-fraction", "interval-string", "negative-price", "price-string", "enabled-string", "toml-spelling"],
)
def test_bad_metering_values_are_refused_by_the_schema(metering) -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"metering": metering})


def test_oidc_needs_its_settings() -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"auth": {"oidc": {"enabled": True, "issuer": "https://idp.example.org"}}})


@pytest.mark.parametrize(
    "config",
    [
        {"runtime": {"tenant_concurency": 4}},
        {"listen": "0.0.0.0:9000"},
        {"database": {"url": "postgres://x@y/z"}},
        {"runtime": {"cache_dir": "/data"}},
        {"log": {"format": "yaml"}},
        {"runtime": {"tenant_concurrency": "many"}},
        {"metering": {"flush_interval_secs": 30}},
        {"telemetry": {"otlp_endpoint": "http://otel-collector:4318"}},
        {"console": {"public_url": "https://guildhall.example.gov.uk"}},
    ],
    ids=["typo", "listen-is-the-charts", "url-is-a-secret", "cache-dir-is-the-charts", "bad-enum", "bad-type", "metering-is-a-feature-value", "telemetry-is-a-feature-value", "console-is-a-feature-value"],
)
def test_config_keys_are_checked_like_the_server_checks_them(config) -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"config": config})


def test_unknown_top_level_values_are_refused() -> None:
    with pytest.raises(helm.HelmValuesError, match="replicas"):
        render({"replicas": 3})


def test_toml_rendering_of_values() -> None:
    """Large integers stay integers (Helm reads numbers as floats), strings are escaped,
    arrays and nested tables come out as TOML, and null leaves a key out."""
    values = {
        "config": {
            "runtime": {"kv_quota_bytes": 1099511627776, "tenant_concurrency": None, "outbound": {"allow_cidrs": ["10.20.0.0/16", "fd00::/8"]}},
            "log": {"filter": 'info,guildhall_store=debug,"quoted"\\'},
            "catalogue": {"trusted_keys": {"north-downs-digital": "a2V5", "dotted.name": "b2V5"}},
        }
    }
    objs = render_objects(values)
    config = server_toml(objs)
    assert config["runtime"]["kv_quota_bytes"] == 1099511627776
    assert "tenant_concurrency" not in config["runtime"]
    assert config["runtime"]["outbound"]["allow_cidrs"] == ["10.20.0.0/16", "fd00::/8"]
    assert config["log"]["filter"] == 'info,guildhall_store=debug,"quoted"\\'
    assert config["catalogue"]["trusted_keys"] == {"north-downs-digital": "a2V5", "dotted.name": "b2V5"}
    assert "e+" not in server_toml_text(objs)


def test_notes_show_how_to_mint_the_first_operator_token(value_set) -> None:
    _, values = value_set
    text = notes(values)
    assert "token create" in text and "--role operator" in text
    assert "does not enforce access control" not in text


def test_notes_describe_metrics_traces_and_usage(value_set) -> None:
    _, values = value_set
    text = notes(values)
    assert "/metrics" in text
    assert "does not serve" not in text
    assert "usage report --tenant" in text
    if (values or {}).get("telemetry", {}).get("enabled"):
        assert values["telemetry"]["otlpEndpoint"] + "/v1/traces" in text
    assert "WARNING" not in text, "the ingress does not publish /metrics"


def test_notes_check_readiness_where_it_is_routed(value_set) -> None:
    """/readyz is not on the ingress (it routes /api and /s), so NOTES.txt checks it through a
    port-forward to the Service, and through the ingress only what the ingress routes."""
    _, values = value_set
    values = merged(values, ingress={"enabled": True})
    text = notes(values)
    assert "port-forward service/guildhall 8080:80" in text
    assert "curl http://127.0.0.1:8080/readyz" in text
    for host in values["ingress"].get("hosts") or [{"host": "guildhall.example.org"}]:
        assert f"://{host['host']}/readyz" not in text
        assert f"://{host['host']}/api/openapi.json" in text
    only_services = {"enabled": True, "hosts": [{"host": "s.example.org", "paths": [{"path": "/s", "pathType": "Prefix"}]}]}
    assert "s.example.org/api" not in notes({"ingress": only_services})


def test_notes_warn_when_the_ingress_publishes_metrics() -> None:
    ingress = {"enabled": True, "hosts": [{"host": "guildhall.example.org", "paths": [{"path": "/", "pathType": "Prefix"}]}]}
    assert "/metrics is public" in notes({"ingress": ingress})


def test_notes_warn_when_the_ingress_hides_callers_addresses() -> None:
    """Behind the ingress without trusted proxies every caller has the ingress controller's
    address, which the failed-sign-in lockout and the feedback limit key on."""
    warning = "config.server.trusted_proxies is empty"
    ingress = {"enabled": True}
    for values in [
        {"ingress": ingress},
        {"ingress": ingress, "config": {"server": {"trusted_proxies": []}}},
        {"ingress": ingress, "config": {"server": {"trusted_proxies": None}}},
        {"ingress": ingress, "config": {"server": None}},
    ]:
        text = notes(values)
        assert warning in text, values
        assert "lockout" in text and "ingress controller's pod range" in text
    trusted = {"ingress": ingress, "config": {"server": {"trusted_proxies": ["10.42.0.0/16"]}}}
    assert warning not in notes(trusted)
    # Without an ingress, the peer is the caller.
    assert warning not in notes(None)
    assert warning not in notes(production_values())


# Memory budget -----------------------------------------------------------------------------


def test_the_memory_budget_follows_the_container_memory_limit() -> None:
    """Unset, runtime.memory_budget_mib is the memory limit less 256 MiB for the server, so
    guests are refused with 429 before the pod would be OOM-killed; set, it is kept."""
    cases = [({"limits": {"memory": "2Gi"}}, 1792), ({"limits": {"memory": "3072Mi"}}, 2816)]
    for resources, budget in cases:
        config = server_toml(render_objects({"resources": resources}))
        assert config["runtime"]["memory_budget_mib"] == budget, resources
    # Never below the largest plugin's cap, which the server would refuse.
    config = server_toml(render_objects({"resources": {"limits": {"memory": "300Mi"}}}))
    assert config["runtime"]["memory_budget_mib"] == 256
    config = server_toml(
        render_objects({"resources": {"limits": {"memory": "2Gi"}}, "config": {"runtime": {"memory_budget_mib": 900}}})
    )
    assert config["runtime"]["memory_budget_mib"] == 900
    config = server_toml(render_objects({"resources": {"limits": {"memory": None}}}))
    assert "memory_budget_mib" not in config["runtime"]
