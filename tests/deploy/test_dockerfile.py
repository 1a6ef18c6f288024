"""The Dockerfile, parsed by BuildKit's own parser (PyPI `dockerfile`), since no Docker engine
runs here: two stages, the locked release build of the binary, a non-root runtime whose user
matches the chart, and a build context that keeps every workspace member."""

from __future__ import annotations

import fnmatch

import dockerfile
import tomli

from conftest import REPO, container, deployment, render_objects

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def stages() -> list[list[dockerfile.Command]]:
    """The instructions of each stage, in order."""
    out: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            out.append([])
        if out:
            out[-1].append(command)
    return out


def instruction(stage: list[dockerfile.Command], name: str) -> dockerfile.Command:
    found = [c for c in stage if c.cmd == name]
    assert found, f"no {name} in stage {stage[0].original}"
    return found[-1]


def test_builder_makes_the_locked_release_binary() -> None:
    build, _ = stages()
    assert build[0].value[0] == "rust:1.95-bookworm"
    (run,) = [c for c in build if c.cmd == "RUN"]
    assert "cargo build --release --locked -p guildhall" in " ".join(run.value)
    assert "target/release/guildhall" in " ".join(run.value)


def test_runtime_is_non_root_and_runs_the_binary() -> None:
    _, runtime = stages()
    assert runtime[0].value[0] == "gcr.io/distroless/cc-debian12:nonroot"
    user = instruction(runtime, "USER").value[0]
    assert user.split(":")[0] == "10001"
    entrypoint = instruction(runtime, "ENTRYPOINT")
    assert entrypoint.json and entrypoint.value == ("/usr/local/bin/guildhall",)
    cmd = instruction(runtime, "CMD")
    assert cmd.json and cmd.value == ("serve", "--listen", "0.0.0.0:8080")
    copies = [c for c in runtime if c.cmd == "COPY"]
    assert any(c.value[-1] == "/usr/local/bin/guildhall" and "--from=build" in c.flags for c in copies)


def test_chart_runs_the_image_as_its_user() -> None:
    _, runtime = stages()
    uid = int(instruction(runtime, "USER").value[0].split(":")[0])
    c = container(deployment(render_objects(None)))
    assert c["securityContext"]["runAsUser"] == uid
    # The chart passes its own arguments after the image's ENTRYPOINT.
    assert "command" not in c
    assert c["args"][-1] == "serve"


def test_build_context_keeps_the_workspace() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    workspace = tomli.loads((REPO / "Cargo.toml").read_text())["workspace"]
    needed = ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml", *(f"{m}/Cargo.toml" for m in workspace["members"])]
    for path in needed:
        assert (REPO / path).exists(), path
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in patterns:
            hit = [p for p in prefixes if fnmatch.fnmatch(p, pattern.lstrip("/"))]
            assert not hit, f".dockerignore pattern {pattern!r} drops {path}, which cargo needs"
    assert "target" in patterns and ".git" in patterns
