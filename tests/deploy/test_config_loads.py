"""The guildhall.toml the chart renders loads in the real configuration loader: the binary
named by GUILDHALL_BIN runs `config check` and `config show` on it, with the database URL in
the environment as the pods get it. Without GUILDHALL_BIN these tests fail; they never skip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import tomli

from conftest import CHART, production_values, render_objects, server_toml_text

DATABASE_URL = "postgres://u:p@db/guildhall"

# Keys the chart sets itself rather than through the `config` values tree.
CHART_OWNED = {"listen", "database.url", "runtime.cache_dir"}
# Keys behind the chart's feature values rather than the `config` tree (auth.oidc, whose
# issuers' keys test_oidc_issuers.py checks one by one, telemetry, metering,
# database.adminUrl, which only the migration Job receives). `console.*` is one too, but is
# checked key by key against the binary below (EVERY_CONSOLE_VALUE).
CHART_FEATURES = ("database.admin_url", "auth.", "telemetry.", "metering.", "console.")

# The chart's `console` values and the binary's `[console]` keys they render as.
CONSOLE_KEYS = {
    "enabled": "enabled",
    "publicUrl": "public_url",
    "secureCookies": "secure_cookies",
    "tokenSignIn": "token_sign_in",
    "idleTimeoutMins": "idle_timeout_mins",
    "absoluteTimeoutHours": "absolute_timeout_hours",
}

# Every key of the `config` tree set to a valid value that differs from the binary's
# default, so `config show` proves each one came through.
EVERY_KEY: dict[str, Any] = {
    "database": {"max_connections": 7, "acquire_timeout_ms": 1234, "statement_timeout_ms": 4321},
    "http": {"api_body_limit_bytes": 2097152, "shutdown_grace_secs": 11},
    "server": {
        "header_read_timeout_secs": 7,
        "body_read_timeout_secs": 12,
        "request_timeout_secs": 70,
        "keep_alive_idle_secs": 45,
        "max_connections_per_client": 1000,
        "trusted_proxies": ["10.42.0.0/16", "fd00:42::/64"],
        "public_hosts": ["services.north-downs.example.gov.uk"],
    },
    "log": {"filter": "warn,guildhall_store=debug", "format": "text"},
    "runtime": {
        "default_memory_mib": 32,
        "max_memory_mib": 128,
        "default_timeout_ms": 1500,
        "max_timeout_ms": 20000,
        "max_request_body_bytes": 1048576,
        "max_response_body_bytes": 2097152,
        "max_wasm_stack_bytes": 262144,
        "tenant_concurrency": 9,
        "saturation_calls": 12,
        "tenant_queue": 5,
        "tenant_queue_timeout_ms": 250,
        "max_component_bytes": 16777216,
        "compile_timeout_ms": 30000,
        "compile_concurrency": 2,
        "pooling_instances": 0,
        "kv_quota_bytes": 1073741824,
        "guest_log_lines": 10,
        "memory_budget_mib": 1024,
        "max_call_resources": 500,
        "max_fields_bytes": 32768,
        "events_per_call": 50,
        "events_per_tenant_per_minute": 3000,
        "publish_compile_concurrency": 2,
        "publish_compile_threads": 2,
        "publish_compile_wait_ms": 5000,
        "compile_cache_entries": 64,
        "compile_cache_mib": 512,
        "share_compiled": "on",
        "outbound": {
            "timeout_ms": 3000,
            "max_response_bytes": 1048576,
            "allow_cidrs": ["10.20.0.0/16", "fd00:1::/64"],
            "max_requests_per_call": 8,
        },
    },
    "catalogue": {
        "require_signatures": True,
        # RFC 8032 test key 1: a valid ed25519 public key.
        "trusted_keys": {"north-downs-digital": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
    },
    "sessions": {
        "secure_cookies": False,
        "idle_timeout_mins": 20,
        "absolute_timeout_hours": 6,
        "max_bytes": 32768,
    },
    "schedules": {"enabled": False, "poll_interval_secs": 5, "catch_up_secs": 600},
    "retention": {"enabled": False, "interval_secs": 600},
}


# Every `console` value, each valid and unlike the binary's default, so `config show` proves
# each one came through. (The optional keys, public_url and token_sign_in, are printed only
# when set, so the schema is compared with the binary with these set.)
EVERY_CONSOLE_VALUE: dict[str, Any] = {
    "enabled": False,
    "publicUrl": "https://console.north-downs.example.gov.uk",
    "secureCookies": False,
    "tokenSignIn": True,
    "idleTimeoutMins": 15,
    "absoluteTimeoutHours": 8,
}

# Everything the chart's schema can set in guildhall.toml through `config` and `console`.
EVERY_VALUE: dict[str, Any] = {"config": EVERY_KEY, "console": EVERY_CONSOLE_VALUE}


def as_console_toml(console: dict[str, Any]) -> dict[str, Any]:
    """`console` values in the binary's names (`[console]`)."""
    return {CONSOLE_KEYS[k]: v for k, v in console.items()}


def run(binary: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Only what a pod would have: no GUILDHALL_… variable from this machine leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUILDHALL_") and k != "RUST_LOG"}
    env["GUILDHALL_DATABASE__URL"] = DATABASE_URL
    return subprocess.run(
        [str(binary), "--config", str(config), *args],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(objs: list[dict[str, Any]], tmp_path: Path) -> Path:
    path = tmp_path / "guildhall.toml"
    path.write_text(server_toml_text(objs))
    return path


def check_and_show(binary: Path, values: dict[str, Any] | None, tmp_path: Path) -> dict[str, Any]:
    config = write_config(render_objects(values), tmp_path)
    checked = run(binary, config, "config", "check")
    assert checked.returncode == 0, f"config check failed ({checked.returncode}):\n{config.read_text()}\nstderr: {checked.stderr}"
    assert "configuration is valid" in checked.stdout, checked.stdout
    shown = run(binary, config, "config", "show")
    assert shown.returncode == 0, shown.stderr
    assert ":p@" not in shown.stdout, "config show must hide the database password"
    return tomli.loads(shown.stdout)


def leaves(tree: dict[str, Any], maps: set[str], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a TOML tree; tables named in `maps` are leaves (free-form maps)."""
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in maps:
            out.update(leaves(value, maps, f"{path}."))
        else:
            out[path] = value
    return out


def schema_console_keys() -> set[str]:
    """The keys of `console` in values.schema.json, in the binary's names (`console.…`)."""
    with helm.Chart.load(str(CHART)) as chart:
        schema = chart.schema
    values = set(schema["properties"]["console"]["properties"])
    assert values == set(CONSOLE_KEYS), f"values.schema.json's console keys {sorted(values)} differ from CONSOLE_KEYS: update it"
    return {f"console.{CONSOLE_KEYS[k]}" for k in values}


def schema_config_keys() -> tuple[set[str], set[str]]:
    """(leaf keys, free-form map keys) of the `config` tree in values.schema.json."""
    with helm.Chart.load(str(CHART)) as chart:
        schema = chart.schema
    keys: set[str] = set()
    maps: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, sub in node["properties"].items():
            path = f"{prefix}{key}"
            if "properties" in sub:
                walk(sub, f"{path}.")
            else:
                keys.add(path)
                if "object" in sub.get("type", []):
                    maps.add(path)

    walk(schema["properties"]["config"], "")
    return keys, maps


def test_rendered_config_loads(guildhall_bin: Path, value_set, tmp_path: Path) -> None:
    name, values = value_set
    shown = check_and_show(guildhall_bin, values, tmp_path)
    assert shown["listen"] == "0.0.0.0:8080"
    assert shown["runtime"]["cache_dir"] == "/var/cache/guildhall"
    assert shown["log"]["format"] == "json"
    assert shown["http"]["shutdown_grace_secs"] == 25
    # Behind the ingress every connection comes from it: the chart raises the per-client cap.
    assert shown["server"]["max_connections_per_client"] == 4096
    assert shown["database"]["url"].startswith("postgres://"), "the URL comes from the environment"
    assert shown["metering"] == {"enabled": True, "flush_interval_secs": 10, "price_per_cpu_second": 0.0001}
    console = {"enabled": True, "secure_cookies": True, "idle_timeout_mins": 30, "absolute_timeout_hours": 12}
    if name == "production":
        assert shown["console"] == console | {"public_url": "https://services.north-downs.example.org"}
    else:
        assert shown["console"] == console, "no ingress: no public URL, token sign-in as the binary decides"
    if name == "production":
        assert shown["telemetry"] == {"otlp_endpoint": "http://otel-collector.monitoring:4318", "service_name": "guildhall"}
        assert shown["runtime"]["tenant_concurrency"] == 32
        assert shown["runtime"]["pooling_instances"] == 500
        assert shown["runtime"]["outbound"]["allow_cidrs"] == ["10.20.0.0/16"]
        assert shown["database"]["max_connections"] == 20
        assert shown["catalogue"]["require_signatures"] is True
        assert set(shown["catalogue"]["trusted_keys"]) == {"north-downs-digital"}
    else:
        # Unset by the chart: the binary's default, 8 per core it may use.
        concurrency = shown["runtime"]["tenant_concurrency"]
        assert concurrency >= 8 and concurrency % 8 == 0, concurrency
        assert "otlp_endpoint" not in shown["telemetry"], "no endpoint: no spans leave the process"


def test_every_config_key_comes_through(guildhall_bin: Path, tmp_path: Path) -> None:
    shown = check_and_show(guildhall_bin, EVERY_VALUE, tmp_path)
    _, maps = schema_config_keys()
    wanted = leaves(EVERY_KEY, maps) | leaves({"console": as_console_toml(EVERY_CONSOLE_VALUE)}, maps)
    got = leaves(shown, maps)
    for key, value in wanted.items():
        assert got.get(key) == value, f"{key}: set {value!r}, the server has {got.get(key)!r}"


def test_chart_schema_matches_the_binary(guildhall_bin: Path, tmp_path: Path) -> None:
    """Every key the binary has is settable through `config` (or set by the chart), and the
    chart's schema allows no key the binary lacks: the strict schema cannot drift."""
    keys, maps = schema_config_keys()
    assert set(leaves(EVERY_KEY, maps)) == keys, "EVERY_KEY above must cover the whole schema"
    console = schema_console_keys()
    assert {f"console.{k}" for k in as_console_toml(EVERY_CONSOLE_VALUE)} == console, "EVERY_CONSOLE_VALUE above must cover the schema's console"
    shown = check_and_show(guildhall_bin, EVERY_VALUE, tmp_path)
    printed = set(leaves(shown, maps))
    missing_from_chart = {k for k in printed - keys - CHART_OWNED if not k.startswith(CHART_FEATURES)}
    assert not missing_from_chart, f"the binary has keys the chart's values.schema.json refuses: {sorted(missing_from_chart)}"
    unknown_to_binary = keys - printed
    assert not unknown_to_binary, f"values.schema.json allows keys the binary refuses: {sorted(unknown_to_binary)}"
    printed_console = {k for k in printed if k.startswith("console.")}
    assert printed_console == console, f"the binary's [console] keys {sorted(printed_console)} differ from the chart's {sorted(console)}"


def test_a_bad_value_is_caught_by_the_real_loader(guildhall_bin: Path, tmp_path: Path) -> None:
    """The check can fail: a value the schema allows but the server refuses (default memory
    above the maximum) makes `config check` exit non-zero, naming the key."""
    values = {"config": {"runtime": {"default_memory_mib": 512, "max_memory_mib": 256}}}
    config = write_config(render_objects(values), tmp_path)
    checked = run(guildhall_bin, config, "config", "check")
    assert checked.returncode != 0
    assert "default_memory_mib" in checked.stderr, checked.stderr


def test_migration_config_loads(guildhall_bin: Path, tmp_path: Path) -> None:
    objs = render_objects(production_values())
    hook = next(o for o in objs if o["kind"] == "ConfigMap" and "helm.sh/hook" in o["metadata"].get("annotations", {}))
    path = tmp_path / "migrate.toml"
    path.write_text(hook["data"]["guildhall.toml"])
    checked = run(guildhall_bin, path, "config", "check")
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("format_", ["json", "text"])
def test_log_formats_load(guildhall_bin: Path, tmp_path: Path, format_: str) -> None:
    shown = check_and_show(guildhall_bin, {"config": {"log": {"format": format_}}}, tmp_path)
    assert shown["log"]["format"] == format_


def test_operations_guide_documents_every_key(guildhall_bin: Path, tmp_path: Path) -> None:
    """docs/operations.md's configuration reference has a row for every key the binary prints."""
    import re  # noqa: PLC0415

    from conftest import REPO  # noqa: PLC0415

    guide = (REPO / "docs" / "operations.md").read_text()
    reference = guide[guide.index("## Configuration reference") :]
    rows = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", reference, flags=re.MULTILINE))
    _, maps = schema_config_keys()
    # Every value set, so that keys the binary prints only when set are asked for too.
    shown = check_and_show(guildhall_bin, EVERY_VALUE, tmp_path)
    missing = sorted(set(leaves(shown, maps)) - rows)
    assert not missing, f"docs/operations.md lacks reference rows for {missing}"


def test_rendered_oidc_config_loads(guildhall_bin: Path, tmp_path: Path) -> None:
    values = {"auth": {"oidc": {"enabled": True, "id": "example-idp", "issuer": "https://login.example.gov.uk/", "audience": "guildhall", "jwksUrl": "https://login.example.gov.uk/keys"}}}
    shown = check_and_show(guildhall_bin, values, tmp_path)
    assert shown["auth"]["oidc"] == [{"id": "example-idp", "issuer": "https://login.example.gov.uk/", "audience": "guildhall", "jwks_url": "https://login.example.gov.uk/keys", "tenants": [], "leeway_secs": 60}]


def test_rendered_telemetry_config_loads(guildhall_bin: Path, tmp_path: Path) -> None:
    values = {"telemetry": {"enabled": True, "otlpEndpoint": "http://otel-collector.monitoring:4318", "serviceName": "guildhall-north-downs"}}
    shown = check_and_show(guildhall_bin, values, tmp_path)
    assert shown["telemetry"] == {"otlp_endpoint": "http://otel-collector.monitoring:4318", "service_name": "guildhall-north-downs"}


@pytest.mark.parametrize(
    "metering",
    [
        {"enabled": False, "flushIntervalSecs": 3600, "pricePerCpuSecond": 0.00002},
        {"flushIntervalSecs": 1, "pricePerCpuSecond": 0},
        {"pricePerCpuSecond": 2},
    ],
    ids=["off-hourly-small-price", "every-second-free", "whole-pounds"],
)
def test_rendered_metering_config_loads(guildhall_bin: Path, tmp_path: Path, metering: dict[str, Any]) -> None:
    """Whatever the schema allows, the binary loads (a whole price is written as a TOML
    integer, a small one with an exponent) and reads back as given."""
    shown = check_and_show(guildhall_bin, {"metering": metering}, tmp_path)
    toml_names = {"enabled": "enabled", "flushIntervalSecs": "flush_interval_secs", "pricePerCpuSecond": "price_per_cpu_second"}
    defaults = {"enabled": True, "flush_interval_secs": 10, "price_per_cpu_second": 0.0001}
    assert shown["metering"] == defaults | {toml_names[k]: v for k, v in metering.items()}
