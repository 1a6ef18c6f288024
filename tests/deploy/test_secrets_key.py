"""The key install secrets are encrypted with: the chart mounts an existing Secret's key
read-only in the server's pods and names the file in `GUILDHALL_SECRETS__KEY_FILE`; the key
itself never reaches the ConfigMap or the pod spec. Without `secretsKey.existingSecret` nothing
is mounted, and the schema refuses an empty key name."""

from __future__ import annotations

import helm_python as helm
import pytest

from conftest import container, deployment, render, render_objects, server_toml_text

KEY_FILE = "/var/run/secrets/guildhall/secrets-key/key"


def test_an_existing_secret_is_mounted_and_named() -> None:
    objs = render_objects({"secretsKey": {"existingSecret": "guildhall-secrets-key", "key": "aes"}})
    pod = deployment(objs)["spec"]["template"]["spec"]
    server = container(deployment(objs))
    env = {e["name"]: e for e in server["env"]}
    assert env["GUILDHALL_SECRETS__KEY_FILE"]["value"] == KEY_FILE
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["secrets-key"]["mountPath"] == KEY_FILE.rsplit("/", 1)[0]
    assert mounts["secrets-key"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["secrets-key"]["secret"]
    assert secret["secretName"] == "guildhall-secrets-key"
    assert secret["items"] == [{"key": "aes", "path": "key"}]
    # Readable by the server's group only.
    assert secret["defaultMode"] == 0o440
    assert "secrets" not in server_toml_text(objs)


def test_nothing_is_mounted_without_one() -> None:
    objs = render_objects({})
    server = container(deployment(objs))
    assert "GUILDHALL_SECRETS__KEY_FILE" not in {e["name"] for e in server["env"]}
    assert "secrets-key" not in {m["name"] for m in server["volumeMounts"]}


@pytest.mark.parametrize("values", [{"existingSecret": "s", "key": ""}, {"keyFile": "/k"}], ids=["empty-key", "unknown-value"])
def test_bad_values_are_refused_by_the_schema(values: dict[str, str]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"secretsKey": values})
