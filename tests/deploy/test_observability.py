"""The real binary's traces and metrics, read by the official OpenTelemetry and Prometheus
Python code rather than by the Rust code that wrote them.

One module-scoped deployment: an OTLP/HTTP receiver in this process (it also plays the
upstream that a plugin fetches), a fresh SQLite database, `guildhall migrate`, the example
tenants, the `hello` and `fixture-outbound` plugins published with the CLI, and
`guildhall serve` exporting spans to the receiver every 100 ms. The fixture installs both
plugins over HTTP, makes a known set of gateway calls, and at the end stops the server with
SIGTERM and requires exit code 0 and the span of a request made just before it.

What the tests prove:
- every HTTP request is one SERVER span named `<method> <route template>` with the
  `http.*` attributes, its `request_id` (the `x-request-id` the caller got back) and, on the
  gateway, the `guildhall.*` attributes; each plugin call is a child span
  `plugin call <plugin>` with the same `guildhall.*` attributes;
- a caller's W3C `traceparent` is adopted: same trace id, parent = the caller's span;
- a plugin's outbound request carries a `traceparent` in the caller's trace whose parent is
  the exported `plugin call` span;
- the resource's `service.name` is the configured one;
- `/metrics` parses with prometheus_client's parser, has the documented families, counts
  the plugin calls that were made, and no label holds a raw path, a request id, a trace id
  or the token.

Nothing here is skipped: a missing binary, plugin build or span fails the test.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO

SERVICE_NAME = "guildhall-test"
TENANT = "north-downs"
SPAN_DEADLINE_SECS = 10.0
GATEWAY_ROUTE = "/s/{tenant}/{council}/{plugin}/"
GATEWAY_WILDCARD_ROUTE = "/s/{tenant}/{council}/{plugin}/{*path}"
INSTALL_ROUTE = "/api/v1/tenants/{tenant}/installs/{plugin}"
# The published plugins: plugin name -> its folder under plugins/.
PLUGINS = {"hello": "plugins/hello", "fixture-outbound": "plugins/fixtures/outbound"}


# --- OTLP decoding ---------------------------------------------------------------------


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value (status codes are ints, most others strings)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in kvs:
        out[kv.key] = any_value(kv.value)
    return out


@dataclass(frozen=True, repr=False)
class ExportedSpan:
    """One span as the receiver decoded it; ids hex-encoded."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str

    def __repr__(self) -> str:
        return f"{self.name!r} kind={Span.SpanKind.Name(self.kind)} trace={self.trace_id} span={self.span_id} parent={self.parent_span_id or '-'} {self.attributes}"


def decode_export(body: bytes) -> list[ExportedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ExportedSpan(
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


# --- the receiver: OTLP/HTTP collector and plugin upstream ----------------------------


class Receiver:
    """Collects spans POSTed to /v1/traces and the requests a plugin makes to /upstream."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[ExportedSpan] = []
        self.exports = 0
        self.errors: list[str] = []
        self.upstream: list[tuple[str, dict[str, str]]] = []  # (path with query, headers)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        data += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    data = gzip.decompress(data)
                return data

            def answer(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802
                data = self.body()
                if self.path != "/v1/traces":
                    with receiver.lock:
                        receiver.errors.append(f"POST {self.path}")
                    self.answer(404, "text/plain", b"not here")
                    return
                try:
                    spans = decode_export(data)
                except Exception as e:  # noqa: BLE001 - recorded and reported by the tests
                    with receiver.lock:
                        receiver.errors.append(f"undecodable export ({self.headers.get('Content-Type')}): {e!r}")
                    self.answer(400, "text/plain", b"not an ExportTraceServiceRequest")
                    return
                with receiver.lock:
                    receiver.spans.extend(spans)
                    receiver.exports += 1
                self.answer(200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString())

            def do_GET(self) -> None:  # noqa: N802
                if urllib.parse.urlsplit(self.path).path != "/upstream":
                    self.answer(404, "text/plain", b"not here")
                    return
                with receiver.lock:
                    receiver.upstream.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.answer(200, "text/plain", b"upstream ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        # By name: manifests may declare host names only, never IP literals.
        port = self.server.server_address[1]
        return f"http://localhost:{port}"

    def snapshot(self) -> list[ExportedSpan]:
        with self.lock:
            return list(self.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the server process ------------------------------------------------------------------


def binary_env() -> dict[str, str]:
    """This machine's environment without anything that would configure the server behind
    the config file's back (GUILDHALL_…, RUST_LOG, OTEL_…) or send its requests through a
    proxy, plus a 100 ms span batch delay."""
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GUILDHALL_", "OTEL_")) and k != "RUST_LOG" and k.lower() not in proxies
    }
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    return env


class Serve:
    """`guildhall serve` as a child process, its stderr collected by a thread."""

    def __init__(self, binary: Path, config: Path, env: dict[str, str] | None = None) -> None:
        """`env` is added to binary_env(), e.g. GUILDHALL_DATABASE__URL as a pod gets it."""
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(config), "serve", "--listen", "127.0.0.1:0"],
            cwd=config.parent,
            env=binary_env() | (env or {}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.lines: list[str] = []
        self.address: str | None = None
        self.listening = threading.Event()
        self.reader = threading.Thread(target=self._read, name="guildhall-stderr", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            found = re.search(r"address=(\S+)", line)
            if found and "listening" in line and self.address is None:
                self.address = found.group(1).strip('"')
                self.listening.set()
        self.listening.set()  # stderr closed: the process ended

    def log(self, last: int = 60) -> str:
        return "\n".join(self.lines[-last:])

    def wait_listening(self, timeout: float = 60.0) -> str:
        self.listening.wait(timeout)
        if self.address is None:
            self.kill()
            pytest.fail(f"guildhall serve never logged `listening address=…` (exit {self.proc.poll()}):\n{self.log()}")
        return self.address

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"guildhall serve did not exit within {timeout}s of SIGTERM:\n{self.log()}")
        self.reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_cli(binary: Path, config: Path, *args: str) -> str:
    done = subprocess.run(
        [str(binary), "--config", str(config), *args],
        cwd=config.parent,
        env=binary_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"guildhall {' '.join(args)} exited {done.returncode}:\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout


def wasm_dir(binary: Path) -> Path:
    """Where the Rust test build put the plugin components: GUILDHALL_WASM_DIR, else
    $CARGO_TARGET_DIR/wasm-plugins/wasm32-wasip2/release, else the same folder of the target
    directory the binary was built in (…/debug/guildhall-under-test)."""
    tried = []
    if os.environ.get("GUILDHALL_WASM_DIR"):
        tried.append(Path(os.environ["GUILDHALL_WASM_DIR"]))
    else:
        if os.environ.get("CARGO_TARGET_DIR"):
            tried.append(Path(os.environ["CARGO_TARGET_DIR"]) / "wasm-plugins/wasm32-wasip2/release")
        tried.append(binary.parent.parent / "wasm-plugins/wasm32-wasip2/release")
    for candidate in tried:
        if (candidate / "hello.wasm").is_file():
            return candidate
    pytest.fail(
        "the plugin components are not built: no hello.wasm in "
        + ", ".join(str(t) for t in tried)
        + " (run the Rust tests first, which build plugins/ for wasm32-wasip2, or set GUILDHALL_WASM_DIR)"
    )


def manifest_value(text: str, key: str) -> str:
    found = re.search(rf'^{key}\s*=\s*"([^"]+)"', text, flags=re.MULTILINE)
    assert found, f"no {key} in plugin.toml:\n{text}"
    return found.group(1)


def plugin_folder(name: str, wasm: Path, into: Path) -> tuple[Path, str]:
    """A publishable folder for plugin `name` (plugin.toml plus the component it names) and
    the manifest's version."""
    manifest = REPO / PLUGINS[name] / "plugin.toml"
    text = manifest.read_text()
    assert manifest_value(text, "name") == name
    component = wasm / manifest_value(text, "component")
    if not component.is_file():
        pytest.fail(f"{component} is not built (plugin {name}; components are in {wasm})")
    folder = into / name
    folder.mkdir(parents=True)
    shutil.copy(manifest, folder / "plugin.toml")
    shutil.copy(component, folder / component.name)
    return folder, manifest_value(text, "version")


# --- HTTP ---------------------------------------------------------------------------------

# No proxy from this machine's environment between the tests and 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def http(method: str, url: str, *, headers: dict[str, str] | None = None, json_body: Any = None) -> Answer:
    data = None
    headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=30) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8", "replace"))


def new_traceparent() -> tuple[str, str, str]:
    """(header, trace id, span id) of a fresh sampled W3C trace context."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


# --- the deployment -----------------------------------------------------------------------


@dataclass
class Call:
    """One gateway call the fixture made and what came back."""

    path: str
    route: str
    plugin: str
    council: str
    status: int
    body: str
    request_id: str
    caller_trace_id: str | None = None
    caller_span_id: str | None = None


@dataclass
class Deployment:
    base: str
    token: str
    receiver: Receiver
    server: Serve
    versions: dict[str, str]
    calls: dict[str, Call] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    install_request_ids: list[str] = field(default_factory=list)
    upstream_url: str = ""

    def get(self, key: str, path: str, route: str, plugin: str, council: str, *, traced: bool = False) -> Call:
        headers = {}
        trace_id = span_id = None
        if traced:
            headers["traceparent"], trace_id, span_id = new_traceparent()
        answer = http("GET", self.base + path, headers=headers)
        request_id = answer.headers.get("x-request-id", "")
        assert request_id, f"GET {path}: no x-request-id in {answer.headers}"
        self.request_ids.append(request_id)
        call = Call(path, route, plugin, council, answer.status, answer.body, request_id, trace_id, span_id)
        self.calls[key] = call
        return call

    def wait_for(self, what: str, found: Callable[[list[ExportedSpan]], Any]) -> Any:
        """Polls the receiver until `found(spans)` is truthy (and returns it), or fails after
        SPAN_DEADLINE_SECS listing what did arrive."""
        deadline = time.monotonic() + SPAN_DEADLINE_SECS
        while True:
            spans = self.receiver.snapshot()
            result = found(spans)
            if result:
                return result
            if time.monotonic() > deadline:
                arrived = "\n".join(f"  {s}" for s in spans) or "  (none)"
                pytest.fail(
                    f"within {SPAN_DEADLINE_SECS}s no span arrived for: {what}\n"
                    f"{self.receiver.exports} exports; receiver errors: {self.receiver.errors}\n"
                    f"spans that arrived:\n{arrived}\nserver log:\n{self.server.log()}"
                )
            time.sleep(0.1)

    def request_span(self, call: Call) -> ExportedSpan:
        def match(spans: list[ExportedSpan]) -> ExportedSpan | None:
            mine = [s for s in spans if s.attributes.get("request_id") == call.request_id and s.kind == Span.SPAN_KIND_SERVER]
            assert len(mine) <= 1, f"more than one server span for request {call.request_id}: {[str(s) for s in mine]}"
            return mine[0] if mine else None

        return self.wait_for(f"the SERVER span with request_id={call.request_id} ({call.path})", match)

    def plugin_span(self, call: Call) -> tuple[ExportedSpan, ExportedSpan]:
        """(server span, its `plugin call <plugin>` child)."""
        server = self.request_span(call)

        def match(spans: list[ExportedSpan]) -> ExportedSpan | None:
            children = [s for s in spans if s.trace_id == server.trace_id and s.parent_span_id == server.span_id and s.name.startswith("plugin call")]
            assert len(children) <= 1, f"more than one plugin call span under {server}: {[str(s) for s in children]}"
            return children[0] if children else None

        return server, self.wait_for(f"the `plugin call {call.plugin}` child of span {server.span_id} ({call.path})", match)


def write_config(dir_: Path, receiver: Receiver) -> Path:
    config = dir_ / "guildhall.toml"
    config.write_text(
        f"""listen = "127.0.0.1:0"

[database]
url = {json.dumps(f"sqlite://{dir_ / 'g.db'}?mode=rwc")}

[log]
format = "text"

[telemetry]
otlp_endpoint = {json.dumps(receiver.url)}
service_name = {json.dumps(SERVICE_NAME)}

[metering]
flush_interval_secs = 1

[runtime]
cache_dir = {json.dumps(str(dir_ / "cache"))}

[runtime.outbound]
allow_cidrs = ["127.0.0.0/8"]
"""
    )
    return config


@pytest.fixture(scope="module")
def deployment(guildhall_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    receiver = Receiver()
    try:
        dir_ = tmp_path_factory.mktemp("observability")
        config = write_config(dir_, receiver)
        wasm = wasm_dir(guildhall_bin)

        run_cli(guildhall_bin, config, "migrate")
        run_cli(guildhall_bin, config, "tenants", "apply", str(REPO / "tenants"))
        versions = {}
        for name in PLUGINS:
            folder, versions[name] = plugin_folder(name, wasm, dir_ / "publish")
            run_cli(guildhall_bin, config, "plugins", "publish", str(folder))
        token = run_cli(guildhall_bin, config, "token", "create", "--name", "ci", "--role", "operator").strip()
        assert token and "\n" not in token and " " not in token, f"token create printed more than a token: {token!r}"

        server = Serve(guildhall_bin, config)
        try:
            d = Deployment(f"http://{server.wait_listening()}", token, receiver, server, versions)
            drive(d)
        except BaseException:
            server.kill()
            raise
        yield d
        # A last request right before SIGTERM: its span must still be sent before the exit.
        # The caller's id is kept beside the server's own, which names the span.
        caller_id = f"obs-last-{secrets.token_hex(8)}"
        answer = http("GET", f"{d.base}/metrics", headers={"x-request-id": caller_id})
        last_id = answer.headers.get("x-request-id", "")
        assert last_id and last_id != caller_id, answer.headers
        code = server.terminate()
        assert code == 0, f"guildhall serve exited {code} on SIGTERM (expected 0):\n{server.log()}"
        sent = [s for s in receiver.snapshot() if s.attributes.get("request_id") == last_id]
        assert sent, f"the span of the request made just before SIGTERM was not sent before the exit:\n{server.log()}"
        assert sent[0].attributes.get("client_request_id") == caller_id, sent[0].attributes
    finally:
        receiver.close()


def drive(d: Deployment) -> None:
    """Installs both plugins and makes the calls the tests look at."""
    for plugin, version in d.versions.items():
        answer = http(
            "PUT",
            f"{d.base}/api/v1/tenants/{TENANT}/installs/{plugin}",
            headers={"Authorization": f"Bearer {d.token}"},
            json_body={"version": version, "councils": "all", "config": {}},
        )
        assert answer.status == 201, f"installing {plugin} {version}: {answer.status} {answer.body}\n{d.server.log()}"
        request_id = answer.headers.get("x-request-id", "")
        assert request_id, f"PUT installs/{plugin}: no x-request-id in {answer.headers}"
        d.request_ids.append(request_id)
        d.install_request_ids.append(request_id)

    hello = "/s/north-downs/tandridge/hello/"
    d.get("hello", hello, GATEWAY_ROUTE, "hello", "tandridge")
    d.get("hello-traced", hello, GATEWAY_ROUTE, "hello", "tandridge", traced=True)
    d.get("hello-deep", "/s/north-downs/tandridge/hello/some/deeper/path", GATEWAY_WILDCARD_ROUTE, "hello", "tandridge")
    d.get("hello-mole-valley", "/s/north-downs/mole-valley/hello/", GATEWAY_ROUTE, "hello", "mole-valley")
    for key, call in d.calls.items():
        assert call.status == 200, f"{key}: GET {call.path} answered {call.status} {call.body}\n{d.server.log()}"
        assert call.body == f"Hello from {call.council} (north-downs)!", f"{key}: {call.body!r}"

    d.upstream_url = f"{d.receiver.url}/upstream?call={secrets.token_hex(8)}"
    outbound = "/s/north-downs/tandridge/fixture-outbound/?url=" + urllib.parse.quote(d.upstream_url, safe="")
    call = d.get("outbound", outbound, GATEWAY_ROUTE, "fixture-outbound", "tandridge", traced=True)
    assert call.status == 200, f"GET {outbound}: {call.status} {call.body}\n{d.server.log()}"
    assert call.body == "upstream-status: 200\n\nupstream ok", f"the fixture did not echo the upstream: {call.body!r}"


def hello_calls(d: Deployment) -> list[Call]:
    return [c for c in d.calls.values() if c.plugin == "hello"]


# --- spans --------------------------------------------------------------------------------


def guildhall_attributes(span: ExportedSpan) -> dict[str, Any]:
    return {k: v for k, v in span.attributes.items() if k.startswith("guildhall.")}


SERVER_KEYS = ("http.request.method", "http.route", "http.response.status_code", "request_id")


def server_view(span: ExportedSpan) -> dict[str, Any]:
    """What the contract fixes about a request's span: name, kind, the http.* attributes and
    request_id (with their types: the status code is an int), and the guildhall.* ones."""
    return {
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind),
        **{k: span.attributes.get(k) for k in SERVER_KEYS},
        **guildhall_attributes(span),
    }


@pytest.mark.parametrize("key", ["hello", "hello-deep", "hello-mole-valley", "outbound"])
def test_each_gateway_request_is_one_server_span_named_by_its_route_template(deployment: Deployment, key: str) -> None:
    call = deployment.calls[key]
    span = deployment.request_span(call)
    assert server_view(span) == {
        "name": f"GET {call.route}",
        "kind": "SPAN_KIND_SERVER",
        "http.request.method": "GET",
        "http.route": call.route,
        "http.response.status_code": 200,
        "request_id": call.request_id,
        "guildhall.tenant": "north-downs",
        "guildhall.council": call.council,
        "guildhall.plugin": call.plugin,
        "guildhall.plugin.version": deployment.versions[call.plugin],
        "guildhall.outcome": "ok",
    }, f"exported: {span}"


@pytest.mark.parametrize("key", ["hello", "outbound"])
def test_the_plugin_call_is_a_child_span_with_the_same_attributes(deployment: Deployment, key: str) -> None:
    call = deployment.calls[key]
    server, child = deployment.plugin_span(call)
    assert child.name == f"plugin call {call.plugin}", child
    assert child.kind != Span.SPAN_KIND_SERVER, child
    assert guildhall_attributes(child) == guildhall_attributes(server), f"server: {server}\nplugin call: {child}"


def test_api_requests_are_spans_too(deployment: Deployment) -> None:
    """The installs were PUTs on the management API: their spans carry the API's template
    and no guildhall.* attribute."""

    def both(spans: list[ExportedSpan]) -> list[ExportedSpan] | None:
        found = [s for s in spans if s.attributes.get("http.route") == INSTALL_ROUTE]
        return found if len(found) >= 2 else None

    installs = deployment.wait_for(f"two SERVER spans for PUT {INSTALL_ROUTE}", both)
    assert len(installs) == 2, installs
    assert sorted(s.attributes.get("request_id") for s in installs) == sorted(deployment.install_request_ids)
    for span in installs:
        assert server_view(span) == {
            "name": f"PUT {INSTALL_ROUTE}",
            "kind": "SPAN_KIND_SERVER",
            "http.request.method": "PUT",
            "http.route": INSTALL_ROUTE,
            "http.response.status_code": 201,
            "request_id": span.attributes.get("request_id"),
        }, f"exported: {span}"


def test_the_callers_traceparent_is_adopted(deployment: Deployment) -> None:
    call = deployment.calls["hello-traced"]
    server, child = deployment.plugin_span(call)
    assert server.trace_id == call.caller_trace_id, f"the server span is not in the caller's trace {call.caller_trace_id}: {server}"
    assert server.parent_span_id == call.caller_span_id, f"the server span's parent is not the caller's span {call.caller_span_id}: {server}"
    assert child.trace_id == call.caller_trace_id, child


def test_an_untraced_request_starts_its_own_trace(deployment: Deployment) -> None:
    traced = deployment.request_span(deployment.calls["hello-traced"])
    plain = deployment.request_span(deployment.calls["hello"])
    assert plain.parent_span_id == "", f"a request without traceparent should be a root span: {plain}"
    assert plain.trace_id != traced.trace_id


def test_the_plugins_outbound_request_carries_the_plugin_call_span_context(deployment: Deployment) -> None:
    call = deployment.calls["outbound"]
    server, child = deployment.plugin_span(call)
    upstream_path = urllib.parse.urlsplit(deployment.upstream_url)
    fetched = [headers for path, headers in deployment.receiver.upstream if path == f"{upstream_path.path}?{upstream_path.query}"]
    assert len(fetched) == 1, f"the upstream saw {deployment.receiver.upstream}"
    traceparent = fetched[0].get("traceparent")
    assert traceparent, f"the plugin's outbound request has no traceparent: {fetched[0]}"
    parsed = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", traceparent)
    assert parsed, f"not a W3C traceparent: {traceparent!r}"
    trace_id, parent_id, _flags = parsed.groups()
    assert trace_id == call.caller_trace_id, f"outbound trace {trace_id}, the caller's {call.caller_trace_id}"
    assert parent_id == child.span_id, f"outbound parent {parent_id}, the exported plugin call span is {child}"
    assert server.parent_span_id == call.caller_span_id, server


def test_the_resource_names_the_configured_service(deployment: Deployment) -> None:
    deployment.plugin_span(deployment.calls["hello"])
    spans = deployment.receiver.snapshot()
    names = {s.resource.get("service.name") for s in spans}
    assert names == {SERVICE_NAME}, f"service.name of exported spans: {names}"


def test_the_receiver_decoded_every_export(deployment: Deployment) -> None:
    deployment.plugin_span(deployment.calls["outbound"])
    assert deployment.receiver.errors == []


# --- metrics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    samples: list[Any]

    def values(self, sample_name: str, **labels: str) -> list[float]:
        return [s.value for s in self.samples if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]


def scrape(d: Deployment) -> tuple[Answer, dict[str, Family]]:
    answer = http("GET", f"{d.base}/metrics")
    assert answer.status == 200, f"/metrics without credentials: {answer.status} {answer.body}"
    families: dict[str, Family] = {}
    for family in text_string_to_metric_families(answer.body):
        # prometheus_client names a counter family without its `_total`; the samples keep it.
        families[family.name] = Family(family.name, family.type, list(family.samples))
    return answer, families


def family(families: dict[str, Family], name: str, type_: str) -> Family:
    base = name.removesuffix("_total") if type_ == "counter" else name
    found = families.get(base) or families.get(name)
    assert found is not None, f"no metric family {name} ({type_}); families: {sorted(families)}"
    assert found.type == type_, f"{name} is a {found.type}, expected {type_}"
    return found


def label_names(fam: Family, sample_name: str) -> set[frozenset[str]]:
    return {frozenset(k for k in s.labels if k != "le") for s in fam.samples if s.name == sample_name}


def test_metrics_parse_with_the_prometheus_parser(deployment: Deployment) -> None:
    answer, families = scrape(deployment)
    content_type = answer.headers.get("content-type", "")
    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type, content_type

    http_hist = family(families, "http_server_request_duration_seconds", "histogram")
    assert label_names(http_hist, "http_server_request_duration_seconds_count") == {
        frozenset({"http_request_method", "http_route", "http_response_status_code"})
    }
    plugin_hist = family(families, "guildhall_plugin_call_duration_seconds", "histogram")
    assert label_names(plugin_hist, "guildhall_plugin_call_duration_seconds_count") == {
        frozenset({"guildhall_tenant", "guildhall_plugin", "guildhall_plugin_version", "guildhall_outcome"})
    }
    for hist in (http_hist, plugin_hist):
        buckets = {s.name for s in hist.samples}
        assert {f"{hist.name}_bucket", f"{hist.name}_sum", f"{hist.name}_count"} <= buckets, buckets

    cpu = family(families, "guildhall_plugin_cpu_time_seconds_total", "counter")
    assert cpu.values("guildhall_plugin_cpu_time_seconds_total", guildhall_tenant="north-downs", guildhall_plugin="hello"), cpu.samples

    for gauge in ("guildhall_gateway_in_flight", "guildhall_gateway_queue_depth"):
        fam = family(families, gauge, "gauge")
        values = fam.values(gauge, guildhall_tenant="north-downs")
        assert values == [0.0], f"{gauge} for north-downs after the calls finished: {fam.samples}"
    pool = family(families, "guildhall_db_pool_connections", "gauge")
    assert {s.labels.get("state") for s in pool.samples} == {"idle", "in_use"}, pool.samples
    family(families, "guildhall_metering_pending", "gauge")

    compiles = family(families, "guildhall_runtime_compiles_total", "counter")
    assert compiles.samples, "guildhall_runtime_compiles_total has no sample"
    family(families, "guildhall_runtime_compile_time_seconds_total", "counter")
    hits = family(families, "guildhall_runtime_cache_hits_total", "counter")
    assert {s.labels.get("cache") for s in hits.samples} >= {"memory", "disk"}, hits.samples


def test_the_plugin_call_histogram_counts_the_calls_made(deployment: Deployment) -> None:
    _, families = scrape(deployment)
    plugin_hist = family(families, "guildhall_plugin_call_duration_seconds", "histogram")
    for plugin, made in (("hello", len(hello_calls(deployment))), ("fixture-outbound", 1)):
        counted = plugin_hist.values(
            "guildhall_plugin_call_duration_seconds_count",
            guildhall_tenant="north-downs",
            guildhall_plugin=plugin,
            guildhall_plugin_version=deployment.versions[plugin],
            guildhall_outcome="ok",
        )
        assert counted == [made], f"{plugin}/ok calls counted {counted}, made {made}"


def test_the_request_histogram_counts_by_route_template(deployment: Deployment) -> None:
    _, families = scrape(deployment)
    http_hist = family(families, "http_server_request_duration_seconds", "histogram")
    for route in (GATEWAY_ROUTE, GATEWAY_WILDCARD_ROUTE):
        made = sum(1 for c in deployment.calls.values() if c.route == route)
        counted = http_hist.values(
            "http_server_request_duration_seconds_count",
            http_request_method="GET",
            http_route=route,
            http_response_status_code="200",
        )
        assert counted == [made], f"GET {route} 200 counted {counted}, made {made}"
    installs = http_hist.values("http_server_request_duration_seconds_count", http_request_method="PUT", http_route=INSTALL_ROUTE, http_response_status_code="201")
    assert installs == [2], f"PUT {INSTALL_ROUTE} 201 counted {installs}"


def test_metric_labels_are_bounded(deployment: Deployment) -> None:
    """No label holds a raw request path, a request id, a trace or span id, the upstream URL
    or the token: every value comes from a small, operator-controlled set."""
    answer, families = scrape(deployment)
    forbidden = {deployment.token, deployment.upstream_url, "?url="}
    forbidden |= {token_part for token_part in deployment.token.split("_") if len(token_part) >= 16}
    for call in deployment.calls.values():
        forbidden |= {call.path.split("?")[0], call.request_id}
        forbidden |= {i for i in (call.caller_trace_id, call.caller_span_id) if i}
    forbidden |= {i for i in deployment.request_ids if i}
    forbidden |= {s.span_id for s in deployment.receiver.snapshot()}
    offending = []
    for fam in families.values():
        for sample in fam.samples:
            for key, value in sample.labels.items():
                if any(bad in value for bad in forbidden):
                    offending.append(f"{sample.name}{{{key}={value!r}}}")
    assert not offending, f"unbounded label values: {offending}"
    routes = {s.labels["http_route"] for s in family(families, "http_server_request_duration_seconds", "histogram").samples}
    assert not any("north-downs" in r or "tandridge" in r for r in routes), f"http_route holds raw paths: {routes}"
    assert deployment.token not in answer.body
