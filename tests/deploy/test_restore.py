"""The backup and restore procedure of docs/operations.md ("Backup and restore"), run for
real against PostgreSQL (TEST_POSTGRES_URL, a superuser; default
postgres://postgres@127.0.0.1:5432/test) with the real binary (GUILDHALL_BIN): a database
populated by the binary is dumped by the backup CronJob's script exactly as the chart renders
it, then restored and swapped in by the guide's own blocks, read from the guide, and checked
with `guildhall audit verify` and `guildhall tenants list`; a byte changed in a restored audit
entry makes `audit verify` fail. Every database and role made here has a unique name and is
dropped at the end."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import kubernetes_validate
import pytest
import yaml

from conftest import REPO, all_of, render_objects

GUIDE = REPO / "docs" / "operations.md"
TENANTS = REPO / "tenants"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
# Marks the guide's blocks that this file runs.
MARKER = "<!-- tests/deploy/test_restore.py runs this block -->"
# The values that turn the backup CronJob on (the URL is replaced by the test's own).
BACKUP_ON = {"backup": {"enabled": True}, "database": {"backupUrl": "postgres://guildhall_backup@postgresql:5432/guildhall"}}
DUMP_NAME = re.compile(r"^guildhall-\d{8}T\d{6}Z\.dump$")


# The guide -------------------------------------------------------------------------------


def guide_section() -> str:
    text = GUIDE.read_text()
    start = text.index("\n## Backup and restore\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def fenced_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line index, language, code) of every fenced block, dedented when it sits in a list."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```") and len(stripped) > 3:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            body = []
            j = i + 1
            while lines[j].strip() != "```":
                body.append(lines[j])
                j += 1
            code = textwrap.dedent("\n".join(l[len(indent):] if l.startswith(indent) else l for l in body))
            blocks.append((i, stripped[3:], code + "\n"))
            i = j
        i += 1
    return blocks


def marked_blocks() -> list[tuple[str, str]]:
    """(language, code) of the blocks the guide marks as run by this file, in order."""
    section = guide_section()
    lines = section.splitlines()
    marked = []
    for index, lang, code in fenced_blocks(section):
        previous = next(l.strip() for l in reversed(lines[:index]) if l.strip())
        if previous == MARKER:
            marked.append((lang, code))
    return marked


def guide_blocks() -> tuple[str, str, str]:
    """The backup role's SQL, the restore-and-check block and the swap block."""
    blocks = marked_blocks()
    assert [lang for lang, _ in blocks] == ["sql", "sh", "sh"], blocks
    (_, role_sql), (_, restore), (_, swap) = blocks
    return role_sql, restore, swap


def test_the_guide_marks_the_blocks_this_file_runs() -> None:
    role_sql, restore, swap = guide_blocks()
    assert "BYPASSRLS" in role_sql and "pg_read_all_data" in role_sql
    assert "pg_restore" in restore and "audit verify" in restore
    assert "RENAME TO" in swap


def test_the_guide_shows_the_cronjobs_pg_dump_line() -> None:
    """The pg_dump line the guide quotes is the one the rendered CronJob runs."""
    section = guide_section()
    (quoted,) = [code.strip() for _, lang, code in fenced_blocks(section) if code.lstrip().startswith("pg_dump ")]
    assert quoted.startswith("pg_dump --format=custom")
    command, _ = backup_command()
    assert command[:2] == ["/bin/sh", "-c"]
    assert quoted in command[2].splitlines()


def test_the_guides_reader_pod_is_valid_and_mounts_the_backup_claim() -> None:
    """The Pod the guide starts to copy a dump out: valid for Kubernetes, on the claim the
    chart creates, with the chart's pg_dump image, read-only, secured like the chart's pods."""
    section = guide_section()
    (manifest,) = re.findall(r"<<'YAML'\n(.*?)\nYAML\n", section, re.S)
    pod = yaml.safe_load(manifest)
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    objs = render_objects(BACKUP_ON)
    (claim,) = all_of(objs, "PersistentVolumeClaim")
    (cron,) = all_of(objs, "CronJob")
    (backup,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    (volume,) = pod["spec"]["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"], "readOnly": True}
    (reader,) = pod["spec"]["containers"]
    assert reader["image"] == backup["image"]
    (mount,) = reader["volumeMounts"]
    assert mount["readOnly"] is True
    assert mount["mountPath"] == next(e["value"] for e in backup["env"] if e["name"] == "BACKUP_DIR")
    assert reader["securityContext"]["readOnlyRootFilesystem"] is True
    assert reader["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    # The guide's copy command names the same path and a dump name the CronJob writes.
    copied = re.search(r"kubectl -n guildhall cp guildhall-backup-reader:(\S+)", section).group(1)
    assert copied.startswith(mount["mountPath"] + "/")
    assert DUMP_NAME.match(copied.rsplit("/", 1)[1])


# PostgreSQL --------------------------------------------------------------------------------


def with_login(url: str, user: str, password: str | None, database: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(user, safe="")
    if password is not None:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "/" + database, parts.query, ""))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@dataclass
class Cluster:
    """The PostgreSQL server, and the databases and roles this test makes on it."""

    superuser_url: str
    prefix: str = field(default_factory=lambda: f"gh_restore_{uuid.uuid4().hex[:12]}")
    roles: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)

    def psql(self, sql: str, database: str | None = None) -> str:
        url = with_database(self.superuser_url, database) if database else self.superuser_url
        done = subprocess.run(
            ["psql", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1", f"--dbname={url}"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"psql failed:\n{sql}\n{done.stderr}"
        return done.stdout

    def name(self, what: str) -> str:
        return f"{self.prefix}_{what}"

    def role(self, what: str, attributes: str = "") -> tuple[str, str]:
        name, password = self.name(what), secrets.token_hex(16)
        self.roles.append(name)
        self.psql(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' {attributes};")
        return name, password

    def database(self, what: str, owner: str) -> str:
        name = self.name(what)
        self.databases.append(name)
        self.psql(f"CREATE DATABASE \"{name}\" OWNER \"{owner}\" TEMPLATE template0 ENCODING 'UTF8';")
        return name

    def url(self, login: tuple[str, str], database: str) -> str:
        return with_login(self.superuser_url, login[0], login[1], database)

    def drop_everything(self) -> None:
        for database in self.databases:
            self.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);')
        for role in reversed(self.roles):
            self.psql(f'DROP ROLE IF EXISTS "{role}";')


@pytest.fixture
def cluster():
    url = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    probe = subprocess.run(["psql", "--no-psqlrc", "-At", f"--dbname={url}", "-c", "SHOW server_version_num"], capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.fail(f"no PostgreSQL at TEST_POSTGRES_URL={url}: {probe.stderr.strip()}")
    # pg_restore reads dumps of its own major version or older.
    client = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout
    client_major = int(re.search(r"\(PostgreSQL\) (\d+)", client).group(1))
    server_major = int(probe.stdout.strip()) // 10000
    assert client_major >= server_major, f"pg_dump {client_major} cannot dump a PostgreSQL {server_major} server"
    made = Cluster(url)
    try:
        yield made
    finally:
        made.drop_everything()
        left = made.psql(
            f"SELECT datname FROM pg_database WHERE starts_with(datname, '{made.prefix}') "
            f"UNION ALL SELECT rolname FROM pg_roles WHERE starts_with(rolname, '{made.prefix}');"
        )
        assert not left.strip(), f"left behind: {left}"


# The binary and the scripts -----------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without configuration for the binary (every GUILDHALL_…
    variable is read as configuration)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUILDHALL_") and k != "RUST_LOG"}
    env.update(extra)
    return env


@dataclass
class Guildhall:
    binary: Path
    workdir: Path

    def __call__(self, *args: str, url: str, admin_url: str | None = None) -> subprocess.CompletedProcess[str]:
        env = clean_env(GUILDHALL_DATABASE__URL=url)
        if admin_url:
            env["GUILDHALL_DATABASE__ADMIN_URL"] = admin_url
        return subprocess.run([str(self.binary), *args], cwd=self.workdir, env=env, capture_output=True, text=True, timeout=120, check=False)

    def ok(self, *args: str, url: str, admin_url: str | None = None) -> str:
        done = self(*args, url=url, admin_url=admin_url)
        assert done.returncode == 0, f"guildhall {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture
def guildhall(guildhall_bin: Path, tmp_path: Path) -> Guildhall:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Guildhall(guildhall_bin, workdir)


def backup_command(values: dict[str, Any] | None = None) -> tuple[list[str], dict[str, str]]:
    """The backup CronJob's command and its plain environment, as the chart renders them."""
    objs = render_objects(values or BACKUP_ON)
    (cron,) = all_of(objs, "CronJob")
    (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    secret_env = [e["name"] for e in c["env"] if "valueFrom" in e]
    assert secret_env == ["DATABASE_URL"]
    return c["command"], env


def run_backup(backups: Path, database_url: str, retain: int | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the CronJob's command as rendered, with `backups` standing in for the volume."""
    values = BACKUP_ON if retain is None else {**BACKUP_ON, "backup": {"enabled": True, "retain": retain}}
    command, env = backup_command(values)
    env = clean_env(**{**env, "BACKUP_DIR": str(backups), "DATABASE_URL": database_url})
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def run_block(code: str, variables: dict[str, str], guildhall: Guildhall) -> subprocess.CompletedProcess[str]:
    """Runs one of the guide's shell blocks as written, stopping at the first error, with the
    variables of its step 2 and `guildhall` on the PATH."""
    bin_dir = guildhall.workdir.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "guildhall"
    if not link.exists():
        link.symlink_to(guildhall.binary)
    env = clean_env(**variables)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["/bin/sh", "-e", "-u", "-c", code], cwd=guildhall.workdir, env=env, capture_output=True, text=True, timeout=600, check=False)


def run_audit_verify_cronjob(guildhall: Guildhall, url: str) -> subprocess.CompletedProcess[str]:
    """Runs the audit-verify CronJob's container as the chart renders it: its arguments, with
    the server's ConfigMap written where they name it, and the server's URL."""
    objs = render_objects({"auditVerify": {"enabled": True}})
    (cron,) = all_of(objs, "CronJob")
    (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert [e["name"] for e in c["env"]] == ["GUILDHALL_DATABASE__URL"]
    (config_volume,) = [v for v in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    (config_map,) = [o for o in all_of(objs, "ConfigMap") if o["metadata"]["name"] == config_volume["configMap"]["name"]]
    args = list(c["args"])
    config = guildhall.workdir / "etc" / Path(args[args.index("--config") + 1]).name
    config.parent.mkdir(exist_ok=True)
    config.write_text(config_map["data"][config.name])
    args[args.index("--config") + 1] = str(config)
    return guildhall(*args, url=url)


def dumps(backups: Path) -> list[str]:
    return sorted(p.name for p in backups.iterdir())


# A populated database ----------------------------------------------------------------------


@dataclass
class Platform:
    """The roles of the guide's install (owner, server) and its backup role, and a database."""

    cluster: Cluster
    owner: tuple[str, str]
    app: tuple[str, str]
    backup: tuple[str, str]
    live: str

    def urls(self, database: str) -> dict[str, str]:
        return {
            "owner": self.cluster.url(self.owner, database),
            "app": self.cluster.url(self.app, database),
            "backup": self.cluster.url(self.backup, database),
        }


def platform(cluster: Cluster, guildhall: Guildhall) -> Platform:
    """Roles as in docs/operations.md (the backup role by the guide's own SQL) and a migrated
    database holding one alliance and audit entries in its chain and the platform's."""
    owner = cluster.role("owner")
    app = cluster.role("app", "NOSUPERUSER NOBYPASSRLS")
    role_sql, _, _ = guide_blocks()
    backup_name = cluster.name("backup")
    cluster.roles.append(backup_name)
    (password,) = re.findall(r"PASSWORD '([^']*)'", role_sql)
    cluster.psql(re.sub(r"\bguildhall_backup\b", f'"{backup_name}"', role_sql))
    live = cluster.database("live", owner[0])
    made = Platform(cluster, owner, app, (backup_name, password), live)
    urls = made.urls(live)
    guildhall.ok("migrate", url=urls["app"], admin_url=urls["owner"])
    guildhall.ok("tenants", "apply", str(TENANTS / "north-downs.toml"), url=urls["app"])
    # Audit entries: one in the alliance's chain, one in the platform's.
    guildhall.ok("token", "create", "--name", "restore-drill", "--role", "tenant-admin", "--tenant", "north-downs", url=urls["app"])
    guildhall.ok("token", "create", "--name", "platform-team", "--role", "operator", url=urls["app"])
    return made


def chains(verify_output: str) -> dict[str, str]:
    """`audit verify`'s report: chain -> "intact (n entries)" or "broken at entry …"."""
    return dict(line.split(": ", 1) for line in verify_output.splitlines() if re.match(r"^\S+: (intact|broken) ", line))


def entries(report: str) -> int:
    return int(re.fullmatch(r"intact \((\d+) entries\)", report).group(1))


# The procedure -------------------------------------------------------------------------------


def test_backup_and_restore_as_the_guide_says(cluster: Cluster, guildhall: Guildhall, tmp_path: Path) -> None:
    made = platform(cluster, guildhall)
    live = made.urls(made.live)
    before = chains(guildhall.ok("audit", "verify", url=live["app"]))
    # The alliance's chain and the platform's, each with the token minted there.
    assert len(before) == 2 and all(entries(report) >= 1 for report in before.values()), before
    tenants_before = guildhall.ok("tenants", "list", url=live["app"])
    assert "north-downs" in tenants_before and "tandridge" in tenants_before

    # The backup CronJob's script, as rendered, with the backup role.
    backups = tmp_path / "backups"
    backups.mkdir()
    done = run_backup(backups, live["backup"])
    assert done.returncode == 0, done.stderr
    (dump,) = dumps(backups)
    assert DUMP_NAME.match(dump), dump
    assert f"wrote {backups}/{dump}" in done.stdout
    listing = subprocess.run(["pg_restore", "--list", str(backups / dump)], capture_output=True, text=True, check=True).stdout
    assert "Format: CUSTOM" in listing and "TABLE DATA public audit_log" in listing

    # The live database moves on after the dump; the restore brings back the dump's state.
    guildhall.ok("tenants", "apply", str(TENANTS / "the-marches.toml"), url=live["app"])
    assert "the-marches" in guildhall.ok("tenants", "list", url=live["app"])

    _, restore, swap = guide_blocks()
    restored = cluster.name("restored")
    previous = cluster.name("previous")
    cluster.databases += [restored, previous]
    at_restored = made.urls(restored)
    variables = {
        "DUMP": str(backups / dump),
        "SUPERUSER_URL": cluster.superuser_url,
        "OWNER": made.owner[0],
        "LIVE": made.live,
        "RESTORED": restored,
        "PREVIOUS": previous,
        "OWNER_URL": at_restored["owner"],
        "APP_URL": at_restored["app"],
    }

    # Step 3: restore into a new database and check it.
    done = run_block(restore, variables, guildhall)
    assert done.returncode == 0, f"the guide's restore block failed:\n{restore}\n{done.stdout}\n{done.stderr}"
    assert "database schema is current" in done.stdout
    assert chains(done.stdout) == before, done.stdout
    assert tenants_before in done.stdout
    assert "the-marches" not in done.stdout, "written after the dump"
    # Row-level security came back, and the owner owns the tables.
    security = cluster.psql(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relname IN ('councils', 'audit_log') AND relkind = 'r' ORDER BY relname;",
        database=restored,
    )
    assert security.split() == ["audit_log|t|t", "councils|t|t"], security
    owners = cluster.psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public';", database=restored)
    assert owners.split() == [made.owner[0]], owners

    # Step 4: swap it in.
    done = run_block(swap, variables, guildhall)
    assert done.returncode == 0, f"the guide's swap block failed:\n{swap}\n{done.stderr}"
    # The audit-verify CronJob's command, with the server's configuration and URL.
    verified = run_audit_verify_cronjob(guildhall, live["app"])
    assert verified.returncode == 0, verified.stderr
    assert chains(verified.stdout) == before
    assert guildhall.ok("tenants", "list", url=live["app"]) == tenants_before
    assert "the-marches" in guildhall.ok("tenants", "list", url=made.urls(previous)["app"]), "the old database is kept"
    names = cluster.psql(f"SELECT datname FROM pg_database WHERE starts_with(datname, '{cluster.prefix}') ORDER BY 1;").split()
    assert names == sorted([made.live, previous]), names

    # A byte changed in a restored audit entry is found.
    changed = cluster.psql(
        "UPDATE audit_log SET detail = overlay(detail PLACING upper(substr(detail, 3, 1)) FROM 3 FOR 1) "
        "WHERE tenant_id = 'north-downs' AND seq = 1 AND substr(detail, 3, 1) <> upper(substr(detail, 3, 1)) "
        "RETURNING seq;",
        database=made.live,
    )
    assert changed.split() == ["1"], changed
    tampered = run_audit_verify_cronjob(guildhall, live["app"])
    assert tampered.returncode != 0, tampered.stdout
    report = chains(tampered.stdout)
    assert report["north-downs"].startswith("broken at entry 1"), tampered.stdout
    assert all(r.startswith("intact") for chain, r in report.items() if chain != "north-downs"), tampered.stdout
    assert "altered" in tampered.stderr, tampered.stderr


@pytest.mark.parametrize("who", ["app", "owner"])
def test_the_backup_fails_as_a_role_that_row_level_security_binds(who, cluster: Cluster, guildhall: Guildhall, tmp_path: Path) -> None:
    """Neither the server's role nor the owner can dump a database with forced row-level
    security: the script fails, leaves no file and deletes nothing."""
    made = platform(cluster, guildhall)
    backups = tmp_path / "backups"
    backups.mkdir()
    old = [f"guildhall-2001010{day}T023000Z.dump" for day in range(1, 4)]
    for name in old:
        (backups / name).write_bytes(b"an older dump")
    done = run_backup(backups, made.urls(made.live)[who], retain=1)
    assert done.returncode != 0, done.stdout
    assert "row-level security" in done.stderr, done.stderr
    assert dumps(backups) == old, "nothing written, nothing removed"


def test_the_backup_keeps_the_newest_dumps(cluster: Cluster, guildhall: Guildhall, tmp_path: Path) -> None:
    made = platform(cluster, guildhall)
    backups = tmp_path / "backups"
    backups.mkdir()
    old = [f"guildhall-2001010{day}T023000Z.dump" for day in range(1, 6)]
    for name in old:
        (backups / name).write_bytes(b"an older dump")
    (backups / ".guildhall-20010106T023000Z.dump.partial").write_bytes(b"a killed run's")
    (backups / "notes.txt").write_text("not a dump")
    done = run_backup(backups, made.urls(made.live)["backup"], retain=3)
    assert done.returncode == 0, done.stderr
    left = dumps(backups)
    new = [n for n in left if n not in old and DUMP_NAME.match(n)]
    assert len(new) == 1, left
    assert left == sorted(["notes.txt", *old[-2:], *new]), left
    for name in old[:3]:
        assert f"removed {backups}/{name}" in done.stdout
    # The new dump is complete: pg_restore reads it.
    subprocess.run(["pg_restore", "--list", str(backups / new[0])], capture_output=True, check=True)


def test_the_backup_fails_when_the_database_is_unreachable(cluster: Cluster, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "guildhall-20010101T023000Z.dump").write_bytes(b"an older dump")
    done = run_backup(backups, with_database(cluster.superuser_url, cluster.name("missing")), retain=1)
    assert done.returncode != 0
    assert "does not exist" in done.stderr, done.stderr
    assert dumps(backups) == ["guildhall-20010101T023000Z.dump"]
