"""The live API fuzzed by schemathesis from its own OpenAPI document.

One module-scoped deployment of the real binary: a fresh SQLite database in a temporary
folder, the example tenants applied with `guildhall tenants apply`, `hello` published,
and two tokens minted with `guildhall token create`: an operator and a tenant-admin of
north-downs; `hello` is installed for north-downs. schemathesis (pinned in
requirements.txt) then generates requests for every operation of /api/openapi.json with
each token, once with generated path ids (mostly unknown: the 404 paths) and once with the
path ids fixed to the deployment's tenant, council, plugin and version (so requests reach
the handlers' logic), and checks that

- no response is a server error (`not_a_server_error`), and
- every response matches the schema the document gives for its status
  (`response_schema_conformance`).

The run is bounded: a fixed number of examples per operation and a fixed seed, so it takes a
few minutes and a failure reproduces. Nothing is skipped: a missing schemathesis, binary or
plugin build fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO
from test_observability import Serve, binary_env, http, plugin_folder, run_cli, wasm_dir

TENANT = "north-downs"
# Examples per operation and phase; with the fixed seed this keeps a run to minutes.
MAX_EXAMPLES = int(os.environ.get("GUILDHALL_SCHEMATHESIS_EXAMPLES", "30"))
SEED = 20261201
CHECKS = "not_a_server_error,response_schema_conformance"
# Path parameters pinned to what exists, for the run that reaches past the 404s.
EXISTING_IDS = """[parameters]
"path.tenant" = "north-downs"
"path.council" = "tandridge"
"path.plugin" = "hello"
"path.version" = "0.1.0"
"""


@dataclass
class Api:
    base: str
    tokens: dict[str, str]
    server: Serve
    reports: Path


def schemathesis_cli() -> Path:
    """The `st` command of the virtualenv running these checks; its absence fails."""
    for candidate in (Path(sys.executable).parent / "st", shutil.which("st")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail(
        "schemathesis is not installed in this environment (its `st` command is missing): "
        "install tests/deploy/requirements.txt, as .ci/deploy-checks does"
    )


def write_config(dir_: Path) -> Path:
    config = dir_ / "guildhall.toml"
    config.write_text(
        f"""listen = "127.0.0.1:0"

[database]
url = "sqlite://{dir_ / 'g.db'}?mode=rwc"

[log]
format = "text"

[runtime]
cache_dir = "{dir_ / 'cache'}"
"""
    )
    return config


@pytest.fixture(scope="module")
def api(guildhall_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    schemathesis_cli()
    dir_ = tmp_path_factory.mktemp("schemathesis")
    config = write_config(dir_)
    run_cli(guildhall_bin, config, "migrate")
    run_cli(guildhall_bin, config, "tenants", "apply", str(REPO / "tenants"))
    folder, _ = plugin_folder("hello", wasm_dir(guildhall_bin), dir_ / "publish")
    run_cli(guildhall_bin, config, "plugins", "publish", str(folder))
    tokens = {
        "operator": run_cli(
            guildhall_bin, config, "token", "create", "--name", "schemathesis", "--role", "operator"
        ).strip(),
        "tenant-admin": run_cli(
            guildhall_bin,
            config,
            "token",
            "create",
            "--name",
            "schemathesis",
            "--role",
            "tenant-admin",
            "--tenant",
            TENANT,
        ).strip(),
    }
    for role, token in tokens.items():
        assert token and " " not in token and "\n" not in token, f"{role}: {token!r}"
    server = Serve(guildhall_bin, config)
    try:
        base = f"http://{server.wait_listening()}"
        installed = http(
            "PUT",
            f"{base}/api/v1/tenants/{TENANT}/installs/hello",
            headers={"Authorization": f"Bearer {tokens['operator']}"},
            json_body={"version": "0.1.0", "councils": "all", "config": {}},
        )
        assert installed.status == 201, installed
        yield Api(base, tokens, server, dir_ / "reports")
    finally:
        code = server.terminate()
        assert code == 0, f"guildhall serve exited {code} on SIGTERM:\n{server.log()}"


@pytest.mark.parametrize("ids", ["generated", "existing"])
@pytest.mark.parametrize("role", ["operator", "tenant-admin"])
def test_the_api_has_no_server_errors_and_keeps_to_its_schemas(api: Api, role: str, ids: str) -> None:
    report = api.reports / f"{role}-{ids}"
    report.mkdir(parents=True)
    config = report / "schemathesis.toml"
    config.write_text(EXISTING_IDS if ids == "existing" else "")
    command = [
        str(schemathesis_cli()),
        "--config-file",
        str(config),
        "run",
        f"{api.base}/api/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {api.tokens[role]}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # One worker: schemathesis' generation calls `ast.parse` through hypothesis, which on
        # CPython 3.11 can fail from two threads at once ("AST constructor recursion depth
        # mismatch"), a runtime error of the tool with every request passing.
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    done = subprocess.run(
        command,
        cwd=report,
        env=binary_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"schemathesis found problems with the {role} token and {ids} ids (exit {done.returncode}):\n"
        f"{output[-20000:]}\n--- server log ---\n{api.server.log(120)}"
    )
    # A run that tested nothing would also exit 0.
    assert "passed" in output.lower(), output[-5000:]
