"""OpenID Connect issuers: the chart renders any number of them as `[[auth.oidc]]` tables with
every key the binary takes, the real binary loads what it renders, and what the chart refuses
the binary refuses too. The older single issuer written directly under `auth.oidc` still
renders, first. Client secrets for console sign-in come from existing Secrets, mounted in the
server's pods; only their paths reach the ConfigMap."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

import kubernetes_validate

from conftest import (
    CHART,
    all_of,
    chart_without_schema,
    container,
    deployment,
    migration_job,
    notes,
    production_values,
    render,
    render_objects,
    server_toml,
    server_toml_text,
)
from test_config_loads import check_and_show, run, write_config

# The chart's name for each key of an issuer, and the binary's (`[[auth.oidc]]`).
ISSUER_KEYS = {
    "id": "id",
    "issuer": "issuer",
    "audience": "audience",
    "jwksUrl": "jwks_url",
    "jwksFile": "jwks_file",
    "tenants": "tenants",
    "leewaySecs": "leeway_secs",
    "clientId": "client_id",
    # An existing Secret's key, mounted; the binary is told the file's path.
    "clientSecret": "client_secret_file",
    "displayName": "display_name",
    "signIn": "sign_in",
    "requireMfa": "require_mfa",
    "mfaAcrValues": "mfa_acr_values",
}
# What the binary fills in for an issuer that leaves these out (and prints; the sign-in and
# MFA keys left out stay out of `config show`).
BINARY_DEFAULTS = {"tenants": [], "leeway_secs": 60}
# Where the chart mounts the client secrets unless told otherwise.
SECRETS_PATH = "/var/run/secrets/guildhall/oidc"
MFA_ACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

# A P-256 public key (RFC 7517, appendix A.1) as a one-key JWKS: a usable ES256 key, so the
# binary's `config check` reads the file and accepts it.
JWKS = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
            "use": "sig",
            "alg": "ES256",
            "kid": "council-1",
        }
    ]
}


def jwks_file(tmp_path: Path) -> str:
    path = tmp_path / "jwks" / "marches.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(JWKS))
    return str(path)


def several_issuers(tmp_path: Path) -> list[dict[str, Any]]:
    """Three issuers: one limited to two tenants, signing staff in as a confidential client
    with MFA shown by amr or acr; one with its own leeway, a JWKS file, a secret under its own
    key and MFA by amr only, not offered for sign-in; and one with nothing optional."""
    return [
        {
            "id": "north-downs",
            "issuer": "https://login.microsoftonline.com/5f0c3a1e-7d2b-4c8a-9e61-2b7f4d9c0a13/v2.0",
            "audience": "api://guildhall",
            "jwksUrl": "https://login.microsoftonline.com/5f0c3a1e-7d2b-4c8a-9e61-2b7f4d9c0a13/discovery/v2.0/keys",
            "tenants": ["north-downs", "broads-digital"],
            "clientId": "6731de76-14a6-49ae-97bc-6eba6914391e",
            "clientSecret": {"existingSecret": "north-downs-oidc"},
            "displayName": "North Downs councils",
            "signIn": True,
            "requireMfa": True,
            "mfaAcrValues": [MFA_ACR],
        },
        {
            "id": "the-marches",
            "issuer": "https://sso.the-marches.example.org/realms/staff",
            "audience": "guildhall",
            "jwksFile": jwks_file(tmp_path),
            "leewaySecs": 15,
            "clientSecret": {"existingSecret": "marches-oidc", "key": "console-secret"},
            "signIn": False,
            "requireMfa": True,
        },
        {
            "id": "platform-team",
            "issuer": "https://idp.guildhall.example.org/",
            "audience": "guildhall-platform",
            "jwksUrl": "https://idp.guildhall.example.org/.well-known/jwks.json",
        },
    ]


def as_binary(issuer: dict[str, Any], secrets: str = SECRETS_PATH) -> dict[str, Any]:
    """An issuer in the chart's spelling as the binary's `config show` prints it (a client
    secret as the path it is mounted at, under `secrets`)."""
    return BINARY_DEFAULTS | {ISSUER_KEYS[k]: f"{secrets}/{issuer['id']}" if k == "clientSecret" else v for k, v in issuer.items()}


def secret_text(issuer_id: str) -> str:
    return f"the-client-secret-of-{issuer_id}"


def mount_secrets(tmp_path: Path, issuers: list[dict[str, Any]]) -> str:
    """What the pod would have at auth.oidc.clientSecretsMountPath: a file per issuer with a
    clientSecret, named by its id (as Kubernetes writes it, with a final newline)."""
    folder = tmp_path / "oidc-secrets"
    folder.mkdir(exist_ok=True)
    for issuer in issuers:
        if "clientSecret" in issuer:
            (folder / issuer["id"]).write_text(secret_text(issuer["id"]) + "\n")
    return str(folder)


def schema_issuer_keys() -> set[str]:
    with helm.Chart.load(str(CHART)) as chart:
        schema = chart.schema
    return set(schema["properties"]["auth"]["properties"]["oidc"]["properties"]["issuers"]["items"]["properties"])


def test_several_issuers_load_in_the_binary_with_every_key(guildhall_bin: Path, tmp_path: Path) -> None:
    """Rendered by the chart and loaded by the real binary (`config check`, then `config
    show`): every issuer, in order, with every key as given; and between them the issuers use
    every key the binary prints for an issuer, each settable in the chart."""
    issuers = several_issuers(tmp_path)
    secrets = mount_secrets(tmp_path, issuers)
    values = {"auth": {"oidc": {"enabled": True, "issuers": issuers, "clientSecretsMountPath": secrets}}}
    shown = check_and_show(guildhall_bin, values, tmp_path)
    assert shown["auth"]["oidc"] == [as_binary(i, secrets) for i in issuers]
    restricted, with_leeway, plain = shown["auth"]["oidc"]
    assert restricted["tenants"] == ["north-downs", "broads-digital"]
    assert restricted["client_secret_file"] == f"{secrets}/north-downs"
    assert restricted["sign_in"] is True and restricted["require_mfa"] is True
    assert with_leeway["leeway_secs"] == 15 and with_leeway["tenants"] == []
    assert with_leeway["sign_in"] is False and "mfa_acr_values" not in with_leeway
    assert plain["tenants"] == [] and plain["leeway_secs"] == 60
    assert not set(plain) & {"client_id", "client_secret_file", "sign_in", "require_mfa"}
    # The secrets themselves are in neither the ConfigMap nor `config show`.
    config = write_config(render_objects(values), tmp_path)
    printed = run(guildhall_bin, config, "config", "show").stdout
    for issuer in issuers:
        assert secret_text(issuer["id"]) not in config.read_text() + printed
    # The chart and the binary know the same keys of an issuer.
    assert schema_issuer_keys() == set(ISSUER_KEYS), "values.schema.json's issuer keys changed: update ISSUER_KEYS"
    printed = set().union(*(set(i) for i in shown["auth"]["oidc"]))
    assert printed == set(ISSUER_KEYS.values()), f"the binary's issuer keys {sorted(printed)} differ from the chart's {sorted(ISSUER_KEYS.values())}"


def test_the_older_single_issuer_still_renders_first(guildhall_bin: Path, tmp_path: Path) -> None:
    """Values written for the chart's older shape (one issuer directly under auth.oidc) keep
    working, alone or beside `issuers`, and NOTES.txt asks for the move."""
    single = {"id": "surrey", "issuer": "https://login.surrey.example.org/", "audience": "guildhall", "jwksUrl": "https://login.surrey.example.org/keys"}
    issuers = several_issuers(tmp_path)[:2]
    secrets = mount_secrets(tmp_path, issuers)
    values = {"auth": {"oidc": {"enabled": True, **single, "issuers": issuers, "clientSecretsMountPath": secrets}}}
    shown = check_and_show(guildhall_bin, values, tmp_path)
    assert shown["auth"]["oidc"] == [as_binary(single)] + [as_binary(i, secrets) for i in issuers]
    assert "DEPRECATED" in notes(values)
    assert "DEPRECATED" not in notes({"auth": {"oidc": {"enabled": True, "issuers": issuers}}})


def test_production_example_loads_its_issuers(guildhall_bin: Path, tmp_path: Path) -> None:
    values = production_values()
    shown = check_and_show(guildhall_bin, values, tmp_path)
    assert shown["auth"]["oidc"] == [as_binary(i) for i in values["auth"]["oidc"]["issuers"]]
    assert len(shown["auth"]["oidc"]) >= 2
    assert all(i["tenants"] for i in shown["auth"]["oidc"]), "each alliance's provider is limited to it"
    text = notes(values)
    for issuer in values["auth"]["oidc"]["issuers"]:
        assert f"{issuer['id']}: {issuer['issuer']}" in text


def test_issuers_render_as_arrays_of_tables() -> None:
    """`[[auth.oidc]]`, one table per issuer; keys left out stay out (the binary's defaults
    apply), and a leeway of 0 is kept."""
    issuers = [
        {"id": "a1", "issuer": "https://a.example.org/", "audience": "g", "jwksUrl": "https://a.example.org/k", "leewaySecs": 0},
        {"id": "b2", "issuer": "https://b.example.org/", "audience": "g", "jwksFile": "/etc/guildhall/jwks/b.json", "tenants": []},
    ]
    objs = render_objects({"auth": {"oidc": {"enabled": True, "issuers": issuers}}})
    assert server_toml(objs)["auth"] == {
        "oidc": [
            {"id": "a1", "issuer": "https://a.example.org/", "audience": "g", "jwks_url": "https://a.example.org/k", "leeway_secs": 0},
            {"id": "b2", "issuer": "https://b.example.org/", "audience": "g", "jwks_file": "/etc/guildhall/jwks/b.json"},
        ]
    }


def test_issuers_are_not_rendered_unless_enabled() -> None:
    issuers = [{"id": "a1", "issuer": "https://a.example.org/", "audience": "g", "jwksUrl": "https://a.example.org/k"}]
    values = {"auth": {"oidc": {"enabled": False, "issuers": issuers}}}
    assert "auth" not in server_toml(render_objects(values))
    assert "OpenID Connect is off" in notes(values)


def toml_issuers(issuers: list[dict[str, Any]]) -> str:
    """`[[auth.oidc]]` tables written by hand, for values the chart refuses to render."""
    lines = []
    for issuer in issuers:
        lines.append("[[auth.oidc]]")
        for key, value in issuer.items():
            lines.append(f"{ISSUER_KEYS[key]} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


GOOD = {"id": "surrey", "issuer": "https://login.surrey.example.org/", "audience": "guildhall", "jwksUrl": "https://login.surrey.example.org/keys"}

# Issuer lists that both the chart and the binary refuse, with what the binary says. The
# template checks (which hold even when the schema is skipped) cover the ones marked True;
# values.schema.json covers all but repeated ids and issuers, which only the templates see.
REFUSED = {
    "same-id": ([GOOD, GOOD | {"issuer": "https://other.example.org/"}], True, "is used by another issuer"),
    "same-issuer": ([GOOD, GOOD | {"id": "surrey-two"}], True, "configured twice"),
    "both-jwks": ([GOOD | {"jwksFile": "/etc/jwks.json"}], True, "not both"),
    "no-jwks": ([{k: v for k, v in GOOD.items() if k != "jwksUrl"}], True, "set one of `jwks_url` or `jwks_file`"),
    "no-audience": ([{k: v for k, v in GOOD.items() if k != "audience"}], True, "missing field `audience`"),
    "empty-issuer": ([GOOD | {"issuer": ""}], True, "`issuer` is empty"),
    "id-too-short": ([GOOD | {"id": "s"}], True, "invalid issuer id"),
    "id-too-long": ([GOOD | {"id": "s" * 33}], True, "invalid issuer id"),
    "id-uppercase": ([GOOD | {"id": "Surrey"}], True, "invalid issuer id"),
    "leeway-over-an-hour": ([GOOD | {"leewaySecs": 3601}], True, "at most 3600"),
    "jwks-over-plain-http": ([GOOD | {"jwksUrl": "http://login.surrey.example.org/keys"}], False, "must use https"),
    "jwks-not-a-url": ([GOOD | {"jwksUrl": "login.surrey.example.org/keys"}], False, "is not a URL"),
    "acr-without-mfa": ([GOOD | {"mfaAcrValues": [MFA_ACR]}], True, "without `require_mfa = true`"),
    "acr-false-mfa": ([GOOD | {"requireMfa": False, "mfaAcrValues": [MFA_ACR]}], True, "without `require_mfa = true`"),
    "acr-with-a-space": ([GOOD | {"requireMfa": True, "mfaAcrValues": ["urn:a urn:b"]}], True, "without spaces"),
    "empty-client-id": ([GOOD | {"clientId": ""}], True, "`client_id` is empty"),
    "blank-display-name": ([GOOD | {"displayName": "  "}], True, "`display_name` is empty"),
    "long-display-name": ([GOOD | {"displayName": "x" * 101}], True, "longer than 100"),
    "sign-in-over-plain-http": ([GOOD | {"issuer": "http://login.surrey.example.org/", "signIn": True}], True, "must use https"),
    "sign-in-issuer-with-query": ([GOOD | {"issuer": "https://login.surrey.example.org/?tenant=x", "signIn": True}], True, "query"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_chart_refuses_the_binary_refuses(guildhall_bin: Path, tmp_path: Path, case: str) -> None:
    """The chart's refusals are the binary's: each list is refused by the chart (its schema, or
    its templates when they check it, also without the schema), and by `config check` when
    written as TOML by hand."""
    issuers, templates_check, binary_says = REFUSED[case]
    values = {"auth": {"oidc": {"enabled": True, "issuers": issuers}}}
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)):
        render(values)
    if templates_check:
        with pytest.raises(helm.HelmRenderError, match=r"auth\.oidc\.issuers\[[01]\]"):
            render(values, chart=chart_without_schema(tmp_path))
    path = tmp_path / "guildhall.toml"
    path.write_text(toml_issuers(issuers))
    checked = run(guildhall_bin, path, "config", "check")
    assert checked.returncode != 0, f"the binary accepts what the chart refuses:\n{path.read_text()}"
    assert "auth.oidc" in checked.stderr and binary_says in checked.stderr, checked.stderr


@pytest.mark.parametrize(
    "oidc",
    [
        {"enabled": True},
        {"enabled": True, "issuers": []},
        {"enabled": True, "issuer": "https://idp.example.org"},
        {"enabled": True, "issuers": [GOOD | {"leewaySecs": -1}]},
        {"enabled": True, "issuers": [GOOD | {"leewaySecs": 1.5}]},
        {"enabled": True, "issuers": [GOOD | {"tenants": ["North Downs"]}]},
        {"enabled": True, "issuers": [GOOD | {"tenants": "north-downs"}]},
        {"enabled": True, "issuers": [GOOD | {"jwks_url": "https://x.example.org/k"}]},
        {"enabled": True, "issuers": ["surrey"]},
    ],
    ids=["no-issuer", "empty-list", "older-shape-incomplete", "negative-leeway", "fractional-leeway", "tenant-not-an-id", "tenants-not-a-list", "toml-spelling", "not-a-map"],
)
def test_bad_issuer_values_are_refused_by_the_schema(oidc: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"auth": {"oidc": oidc}})


def test_enabled_without_issuers_is_refused_without_the_schema(tmp_path: Path) -> None:
    with pytest.raises(helm.HelmRenderError, match="at least one issuer"):
        render({"auth": {"oidc": {"enabled": True}}}, chart=chart_without_schema(tmp_path))


def test_values_readme_and_schema_name_the_same_issuer_keys() -> None:
    """charts/guildhall/README.md's values table has a row for each issuer key."""
    readme = (CHART / "README.md").read_text()
    rows = set(re.findall(r"^\| `auth\.oidc\.issuers\[\]\.([A-Za-z]+)` \|", readme, flags=re.MULTILINE))
    assert rows == schema_issuer_keys()


@pytest.mark.parametrize(
    "url",
    ["https://login.example.org/keys", "https://login.example.org:8443/realms/x/certs?v=2", "http://localhost:8081/keys", "http://127.0.0.1/keys", "http://[::1]:9000/jwks"],
)
def test_jwks_urls_the_binary_takes_are_accepted(guildhall_bin: Path, tmp_path: Path, url: str) -> None:
    """https anywhere, plain http on loopback only (a provider beside the server in the pod)."""
    shown = check_and_show(guildhall_bin, {"auth": {"oidc": {"enabled": True, "issuers": [GOOD | {"jwksUrl": url}]}}}, tmp_path)
    assert shown["auth"]["oidc"][0]["jwks_url"] == url


def secret_issuers() -> list[dict[str, Any]]:
    return [
        GOOD | {"clientSecret": {"existingSecret": "surrey-oidc"}},
        {"id": "kent", "issuer": "https://sso.kent.example.gov.uk/realms/staff", "audience": "guildhall", "jwksUrl": "https://sso.kent.example.gov.uk/keys", "clientSecret": {"existingSecret": "kent-oidc", "key": "console"}},
        {"id": "hull", "issuer": "https://login.hull.example.org/", "audience": "guildhall", "jwksUrl": "https://login.hull.example.org/keys"},
    ]


def test_client_secrets_are_mounted_from_their_secrets_never_written_into_the_configmap() -> None:
    """Each issuer's clientSecret is one source of a read-only projected volume (its key as
    the file named by the issuer's id), and guildhall.toml holds only the file's path."""
    objs = render_objects({"auth": {"oidc": {"enabled": True, "issuers": secret_issuers()}}})
    surrey, kent, hull = server_toml(objs)["auth"]["oidc"]
    assert surrey["client_secret_file"] == f"{SECRETS_PATH}/surrey"
    assert kent["client_secret_file"] == f"{SECRETS_PATH}/kent"
    assert "client_secret_file" not in hull
    assert not any("client_secret" in issuer for issuer in (surrey, kent, hull) if "client_secret_file" not in issuer)
    text = server_toml_text(objs)
    assert "client_secret =" not in text and "surrey-oidc" not in text and "kent-oidc" not in text

    pod = deployment(objs)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "oidc-client-secrets")
    assert volume == {
        "name": "oidc-client-secrets",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"secret": {"name": "surrey-oidc", "items": [{"key": "client-secret", "path": "surrey"}]}},
                {"secret": {"name": "kent-oidc", "items": [{"key": "console", "path": "kent"}]}},
            ],
        },
    }
    mounts = [m for m in container(deployment(objs))["volumeMounts"] if m["name"] == "oidc-client-secrets"]
    assert mounts == [{"name": "oidc-client-secrets", "mountPath": SECRETS_PATH, "readOnly": True}]
    # The chart makes no Secret of its own for them, and the migration Job (which never reads
    # the OIDC settings) does not mount them.
    assert all("oidc" not in secret["metadata"]["name"] for secret in all_of(objs, "Secret"))
    job = migration_job(objs)
    assert all(m["name"] != "oidc-client-secrets" for m in container(job)["volumeMounts"])
    for obj in objs:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_no_secret_volume_without_client_secrets(value_set) -> None:
    _, values = value_set
    objs = render_objects(values)
    for workload in (deployment(objs), migration_job(objs)):
        names = {v["name"] for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert "oidc-client-secrets" not in names, workload["kind"]


def test_the_secrets_mount_path_can_move_but_not_into_the_configuration() -> None:
    values = {"auth": {"oidc": {"enabled": True, "issuers": secret_issuers(), "clientSecretsMountPath": "/run/oidc/"}}}
    objs = render_objects(values)
    assert server_toml(objs)["auth"]["oidc"][0]["client_secret_file"] == "/run/oidc/surrey"
    assert {"name": "oidc-client-secrets", "mountPath": "/run/oidc", "readOnly": True} in container(deployment(objs))["volumeMounts"]
    for path in ["/etc/guildhall", "/etc/guildhall/oidc"]:
        values["auth"]["oidc"]["clientSecretsMountPath"] = path
        with pytest.raises(helm.HelmRenderError, match="clientSecretsMountPath"):
            render(values)
    values["auth"]["oidc"]["clientSecretsMountPath"] = "relative/path"
    with pytest.raises(helm.HelmValuesError):
        render(values)


@pytest.mark.parametrize(
    "secret",
    ["hunter2", {"key": "client-secret"}, {"existingSecret": ""}, {"existingSecret": "surrey-oidc", "key": ""}, ["surrey-oidc"]],
    ids=["inline-secret", "no-secret-name", "empty-secret-name", "empty-key", "a-list"],
)
def test_a_client_secret_is_only_ever_a_secrets_name(tmp_path: Path, secret: Any) -> None:
    """The secret itself never goes into values (and so never into the ConfigMap): the schema
    and, without it, the templates refuse anything but the name of an existing Secret."""
    values = {"auth": {"oidc": {"enabled": True, "issuers": [GOOD | {"clientSecret": secret}]}}}
    with pytest.raises(helm.HelmValuesError):
        render(values)
    with pytest.raises(helm.HelmRenderError, match=r"auth\.oidc\.issuers\[0\]: clientSecret"):
        render(values, chart=chart_without_schema(tmp_path))


def test_a_missing_client_secret_stops_the_binary(guildhall_bin: Path, tmp_path: Path) -> None:
    """The binary reads the client secret at start-up: the rendered path with nothing there
    (the Secret not mounted) is refused by `config check`, naming the key."""
    issuers = [GOOD | {"clientSecret": {"existingSecret": "surrey-oidc"}}]
    empty = tmp_path / "nothing-mounted"
    empty.mkdir()
    values = {"auth": {"oidc": {"enabled": True, "issuers": issuers, "clientSecretsMountPath": str(empty)}}}
    checked = run(guildhall_bin, write_config(render_objects(values), tmp_path), "config", "check")
    assert checked.returncode != 0
    assert "client_secret_file" in checked.stderr and "auth.oidc" in checked.stderr, checked.stderr


def test_sign_in_and_mfa_keys_render_with_the_binarys_names() -> None:
    """false is written, not dropped, and keys left out stay out."""
    issuers = [
        GOOD | {"clientId": "guildhall-console", "displayName": "Surrey County Council", "signIn": False, "requireMfa": False},
        {"id": "kent", "issuer": "https://sso.kent.example.gov.uk/", "audience": "g", "jwksUrl": "https://sso.kent.example.gov.uk/k", "requireMfa": True, "mfaAcrValues": ["gold", MFA_ACR]},
    ]
    surrey, kent = server_toml(render_objects({"auth": {"oidc": {"enabled": True, "issuers": issuers}}}))["auth"]["oidc"]
    assert surrey == {
        "id": "surrey",
        "issuer": GOOD["issuer"],
        "audience": "guildhall",
        "jwks_url": GOOD["jwksUrl"],
        "client_id": "guildhall-console",
        "display_name": "Surrey County Council",
        "sign_in": False,
        "require_mfa": False,
    }
    assert kent["require_mfa"] is True and kent["mfa_acr_values"] == ["gold", MFA_ACR]
    assert not set(kent) & {"client_id", "client_secret_file", "display_name", "sign_in"}


@pytest.mark.parametrize(
    "issuer",
    [
        GOOD | {"signIn": "yes"},
        GOOD | {"requireMfa": "true"},
        GOOD | {"requireMfa": True, "mfaAcrValues": "urn:mfa"},
        GOOD | {"clientId": 42},
    ],
    ids=["sign-in-not-a-boolean", "require-mfa-not-a-boolean", "acr-values-not-a-list", "client-id-not-a-string"],
)
def test_bad_sign_in_values_are_refused_with_and_without_the_schema(tmp_path: Path, issuer: dict[str, Any]) -> None:
    values = {"auth": {"oidc": {"enabled": True, "issuers": [issuer]}}}
    with pytest.raises(helm.HelmValuesError):
        render(values)
    with pytest.raises(helm.HelmRenderError, match=r"auth\.oidc\.issuers\[0\]"):
        render(values, chart=chart_without_schema(tmp_path))
