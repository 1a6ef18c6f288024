"""The console's settings: the chart's `console` values are rendered as `[console]` with the
binary's names and defaults, `publicUrl` is derived from the ingress when it can be, and the
real binary runs with what the chart renders: `config show` prints every value as given, and
`serve` starts its console with them (the sign-in page and its cookie, the GOV.UK Frontend
assets, the redirect URI sent to an identity provider, forms accepted from the public
origin behind a proxy). What the binary refuses when it starts the console (it is not part
of `config check`), the chart refuses too: by its schema, and by its templates when the
schema is skipped.

Nothing here is skipped: a missing binary fails the tests."""

from __future__ import annotations

import html
import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import tomli

from conftest import CHART, chart_without_schema, merged, render, render_objects, server_toml
from test_config_loads import CONSOLE_KEYS, EVERY_CONSOLE_VALUE, as_console_toml, check_and_show, run, write_config
from test_observability import Serve
from test_oidc_issuers import JWKS

# What the binary runs with when [console] says nothing.
BINARY_DEFAULTS = {"enabled": True, "secure_cookies": True, "idle_timeout_mins": 30, "absolute_timeout_hours": 12}

HOST = "services.north-downs.example.gov.uk"
PATHS = [{"path": p, "pathType": "Prefix"} for p in ("/api", "/s", "/console", "/assets")]


def ingress(*hosts: str, tls: list[str] | None = None) -> dict[str, Any]:
    """An enabled ingress for `hosts` (with the default paths), TLS for the hosts in `tls`."""
    values: dict[str, Any] = {"enabled": True, "hosts": [{"host": h, "paths": PATHS} for h in hosts]}
    if tls is not None:
        values["tls"] = [{"secretName": "guildhall-tls", "hosts": tls}]
    return values


# --- defaults and rendering ----------------------------------------------------------------


def test_the_charts_defaults_are_the_binarys(guildhall_bin: Path, tmp_path: Path) -> None:
    """values.yaml's console defaults, the [console] the chart renders from them and what the
    binary uses with no [console] at all are the same; `publicUrl` and `tokenSignIn` are left
    out, so the binary decides (no public URL, token sign-in while no provider offers one)."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    shown = run(guildhall_bin, empty, "config", "show")
    assert shown.returncode == 0, shown.stderr
    assert tomli.loads(shown.stdout)["console"] == BINARY_DEFAULTS
    assert server_toml(render_objects(None))["console"] == BINARY_DEFAULTS
    with helm.Chart.load(str(CHART)) as chart:
        defaults = chart.values["console"]
    assert defaults["publicUrl"] == "" and defaults["tokenSignIn"] is None
    assert as_console_toml({k: v for k, v in defaults.items() if k not in ("publicUrl", "tokenSignIn")}) == BINARY_DEFAULTS


@pytest.mark.parametrize(
    ("console", "expected"),
    [
        ({"enabled": False}, BINARY_DEFAULTS | {"enabled": False}),
        ({"tokenSignIn": False}, BINARY_DEFAULTS | {"token_sign_in": False}),
        ({"tokenSignIn": None, "publicUrl": ""}, BINARY_DEFAULTS),
        (
            {"publicUrl": "http://127.0.0.1:8080", "secureCookies": False, "idleTimeoutMins": 1440, "absoluteTimeoutHours": 168},
            {"enabled": True, "public_url": "http://127.0.0.1:8080", "secure_cookies": False, "idle_timeout_mins": 1440, "absolute_timeout_hours": 168},
        ),
        (EVERY_CONSOLE_VALUE, as_console_toml(EVERY_CONSOLE_VALUE)),
    ],
    ids=["off", "token-sign-in-false-is-written", "unset-is-left-out", "loopback-trial-longest-sessions", "every-value"],
)
def test_console_values_render_with_the_binarys_names(console: dict[str, Any], expected: dict[str, Any]) -> None:
    assert server_toml(render_objects({"console": console}))["console"] == expected


@pytest.mark.parametrize(
    ("values", "public_url"),
    [
        ({"ingress": ingress(HOST, tls=[HOST])}, f"https://{HOST}"),
        ({"ingress": ingress(HOST, "other.example.gov.uk", tls=["other.example.gov.uk", HOST])}, f"https://{HOST}"),
        ({"ingress": {"enabled": True, "tls": [{"secretName": "t", "hosts": ["guildhall.example.org"]}]}}, "https://guildhall.example.org"),
        ({"ingress": ingress(HOST, tls=[HOST]), "console": {"publicUrl": "https://console.example.gov.uk:8443"}}, "https://console.example.gov.uk:8443"),
        ({"ingress": ingress(HOST)}, None),
        ({"ingress": ingress(HOST, "other.example.gov.uk", tls=["other.example.gov.uk"])}, None),
        ({"ingress": ingress("*.north-downs.example.gov.uk", tls=["*.north-downs.example.gov.uk"])}, None),
        ({"ingress": ingress(HOST, tls=[HOST]) | {"enabled": False}}, None),
    ],
    ids=["first-host-with-tls", "tls-lists-it-second", "default-host-with-tls", "explicit-wins", "no-tls", "tls-for-another-host-only", "wildcard-host", "ingress-off"],
)
def test_the_public_url_defaults_to_the_first_ingress_host_over_tls(values: dict[str, Any], public_url: str | None) -> None:
    """Empty `publicUrl` means `https://<first ingress host>` when the ingress is on and TLS
    covers that host (a wildcard is no address); otherwise none, never an http:// guess."""
    console = server_toml(render_objects(values))["console"]
    assert console.get("public_url") == public_url


def test_a_derived_public_url_loads_in_the_binary(guildhall_bin: Path, tmp_path: Path) -> None:
    shown = check_and_show(guildhall_bin, {"ingress": ingress(HOST, tls=[HOST])}, tmp_path)
    assert shown["console"] == BINARY_DEFAULTS | {"public_url": f"https://{HOST}"}


# --- the real server, started with the rendered configuration -----------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def cookies(self) -> dict[str, str]:
        """Set-Cookie headers by cookie name (the whole header)."""
        return {c.split("=", 1)[0]: c for c in self.headers.get_all("Set-Cookie") or []}


def fetch(address: str, method: str, path: str, headers: dict[str, str] | None = None, body: str | None = None) -> Answer:
    """One request, redirects not followed, every Set-Cookie kept."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def served_values(tmp_path: Path, values: dict[str, Any]) -> dict[str, Any]:
    """`values` plus what running the rendered file on this machine needs: text logs (the
    server's address is read from them) and the compile cache in `tmp_path`."""
    return merged(values, config={"log": {"format": "text"}}, compileCache={"mountPath": str(tmp_path / "cache")})


class Server:
    """`guildhall serve` with the chart's rendered guildhall.toml and, as a pod gets it, the
    database URL in the environment (a fresh SQLite file; the server migrates it)."""

    def __init__(self, binary: Path, config: Path) -> None:
        database = f"sqlite://{config.parent / 'guildhall.db'}?mode=rwc"
        self.serve = Serve(binary, config, env={"GUILDHALL_DATABASE__URL": database})

    def __enter__(self) -> Server:
        self.address = self.serve.wait_listening()
        return self

    def __exit__(self, *exc: object) -> None:
        code = self.serve.terminate()
        assert code == 0, f"guildhall serve exited {code} on SIGTERM:\n{self.serve.log()}"

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return fetch(self.address, "GET", path, headers)

    def post_form(self, path: str, fields: dict[str, str], headers: dict[str, str]) -> Answer:
        body = urllib.parse.urlencode(fields)
        return fetch(self.address, "POST", path, headers | {"Content-Type": "application/x-www-form-urlencoded"}, body)


def start(binary: Path, tmp_path: Path, values: dict[str, Any]) -> Server:
    return Server(binary, write_config(render_objects(served_values(tmp_path, values)), tmp_path))


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} field in the page:\n{page}"
    return found.group(1)


# The console's Content-Security-Policy (core/console/src/render.rs).
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"


@pytest.mark.parametrize(
    ("console", "cookie", "token_form"),
    [
        ({}, "__Host-guildhall-sign-in", True),
        ({"publicUrl": "http://127.0.0.1:8080", "secureCookies": False, "idleTimeoutMins": 1, "absoluteTimeoutHours": 1}, "guildhall-sign-in", True),
        ({"publicUrl": "https://console.north-downs.example.gov.uk:8443/", "tokenSignIn": False, "idleTimeoutMins": 1440, "absoluteTimeoutHours": 168}, "__Host-guildhall-sign-in", False),
        ({"publicUrl": "http://localhost", "tokenSignIn": True}, "__Host-guildhall-sign-in", True),
    ],
    ids=["defaults", "loopback-trial-shortest-sessions", "https-with-port-no-token-sign-in", "localhost-token-sign-in"],
)
def test_the_server_runs_its_console_with_the_rendered_values(guildhall_bin: Path, tmp_path: Path, console: dict[str, Any], cookie: str, token_form: bool) -> None:
    """What the chart renders, the binary starts with: the sign-in page answers with the
    console's headers and a sign-in cookie that is `__Host-` and Secure unless secureCookies
    is off, offers token sign-in as configured, and links GOV.UK Frontend assets that are
    served on the same port."""
    values = {"console": console}
    shown = check_and_show(guildhall_bin, served_values(tmp_path, values), tmp_path)
    assert shown["console"] == BINARY_DEFAULTS | as_console_toml(console)
    with start(guildhall_bin, tmp_path, values) as server:
        page = server.get("/console/sign-in")
        assert page.status == 200, f"{page.status} {page.body}\n{server.serve.log()}"
        assert page.headers["Content-Security-Policy"] == CSP
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Cache-Control"] == "no-store"
        set_cookie = page.cookies()
        assert set(set_cookie) == {cookie}, set_cookie
        attributes = {a.strip() for a in set_cookie[cookie].split(";")[1:]}
        assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= attributes, attributes
        assert ("Secure" in attributes) == cookie.startswith("__Host-"), attributes
        assert ('name="token"' in page.body) == token_form
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.body)
        assert stylesheet, page.body
        href = html.unescape(stylesheet.group(1))
        assert re.fullmatch(r"/assets/govuk-frontend/[0-9a-f]+/govuk-frontend\.min\.css", href), href
        css = server.get(href)
        assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
        # Signed out, a console page sends the browser to sign in.
        home = server.get("/console/t/north-downs")
        assert home.status in (302, 303, 307) and home.headers["Location"].startswith("/console/sign-in"), home


def test_a_disabled_console_is_not_served(guildhall_bin: Path, tmp_path: Path) -> None:
    """console.enabled false: neither /console nor the assets under /assets are served; the
    API is."""
    with start(guildhall_bin, tmp_path, {"console": {"enabled": False}}) as server:
        assert server.get("/console/sign-in").status == 404
        assert server.get("/assets/govuk-frontend/0/govuk-frontend.min.css").status == 404
        assert server.get("/api/openapi.json").status == 200


# An identity provider on loopback: just its OpenID configuration, which is all the server
# reads before sending a browser there.
class Provider:
    def __init__(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                if self.path != "/realms/staff/.well-known/openid-configuration":
                    self.send_error(404)
                    return
                body = json.dumps(
                    {
                        "issuer": provider.issuer,
                        "authorization_endpoint": f"{provider.issuer}/authorize",
                        "token_endpoint": f"{provider.issuer}/token",
                        "jwks_uri": f"{provider.issuer}/keys",
                        "code_challenge_methods_supported": ["S256"],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/staff"
        self.thread = threading.Thread(target=self.server.serve_forever, name="identity-provider", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[Provider]:
    idp = Provider()
    try:
        yield idp
    finally:
        idp.close()


@pytest.mark.parametrize("token_sign_in", [None, True], ids=["token-sign-in-unset", "token-sign-in-true"])
def test_identity_provider_sign_in_behind_the_ingress(guildhall_bin: Path, tmp_path: Path, provider: Provider, token_sign_in: bool | None) -> None:
    """An ingress with TLS and an identity provider that offers sign-in, and nothing else set:
    the public URL is the ingress host, the provider's button is on the sign-in page, the
    browser is sent to the provider with the redirect URI <publicUrl>/console/sign-in/callback
    (what operators register), token sign-in is off unless asked for, and a form posted from
    the public origin is accepted although the server sees another Host (the ingress's
    rewrite), while one from another site is not."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(JWKS))
    issuer = {
        "id": "north-downs",
        "issuer": provider.issuer,
        "audience": "api://guildhall",
        "jwksFile": str(jwks),
        "clientId": "guildhall-console",
        "displayName": "North Downs councils",
        "signIn": True,
    }
    values: dict[str, Any] = {"ingress": ingress(HOST, tls=[HOST]), "auth": {"oidc": {"enabled": True, "issuers": [issuer]}}}
    if token_sign_in is not None:
        values["console"] = {"tokenSignIn": token_sign_in}
    shown = check_and_show(guildhall_bin, served_values(tmp_path, values), tmp_path)
    assert shown["console"]["public_url"] == f"https://{HOST}"
    with start(guildhall_bin, tmp_path, values) as server:
        page = server.get("/console/sign-in")
        assert page.status == 200, f"{page.status} {page.body}\n{server.serve.log()}"
        assert "Sign in with North Downs councils" in page.body
        assert ('name="token"' in page.body) == bool(token_sign_in)

        away = server.get("/console/sign-in/oidc/north-downs?return_to=%2Fconsole")
        assert away.status in (302, 303, 307), f"{away.status} {away.body}\n{server.serve.log()}"
        target = urllib.parse.urlsplit(away.headers["Location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider.issuer}/authorize"
        query = dict(urllib.parse.parse_qsl(target.query))
        assert query["redirect_uri"] == f"https://{HOST}/console/sign-in/callback"
        assert query["client_id"] == "guildhall-console"
        assert query["code_challenge_method"] == "S256"

        # The sign-in form, posted through the ingress: Host is what the ingress sent on.
        # The form's anti-forgery token is the sign-in cookie's secret (the form is on the page
        # only with token sign-in, but the check runs before the handler either way).
        cookie = page.cookies()["__Host-guildhall-sign-in"].split(";")[0]
        csrf = cookie.split("=", 1)[1]
        if token_sign_in:
            assert hidden(page.body, "csrf") == csrf
        fields = {"csrf": csrf, "return_to": "/console", "token": "ghall_not-a-real-token"}
        proxied = {"Cookie": cookie, "Host": "guildhall.councils.svc.cluster.local"}
        other_site = server.post_form("/console/sign-in", fields, proxied | {"Origin": "https://evil.example.org"})
        assert other_site.status == 403 and "sent from another website" in other_site.body, other_site
        public = server.post_form("/console/sign-in", fields, proxied | {"Origin": f"https://{HOST}"})
        assert "sent from another website" not in public.body and "has expired" not in public.body, public
        if token_sign_in:
            assert public.status in (401, 403, 422, 429) and "switched off" not in public.body, public
        else:
            assert public.status == 403 and "switched off" in public.body, public


# --- refusals ------------------------------------------------------------------------------

# Values the binary refuses when it starts the console, with what it says. The chart refuses
# each by its schema, and by its templates when the schema is skipped.
REFUSED = {
    "idle-zero": ({"idleTimeoutMins": 0}, "console.idle_timeout_mins is 0"),
    "idle-over-a-day": ({"idleTimeoutMins": 1441}, "between 1 and 1440"),
    "absolute-zero": ({"absoluteTimeoutHours": 0}, "console.absolute_timeout_hours is 0"),
    "absolute-over-a-week": ({"absoluteTimeoutHours": 169}, "between 1 and 168"),
    "url-with-a-path": ({"publicUrl": "https://guildhall.example.gov.uk/console"}, "no path"),
    "url-with-a-query": ({"publicUrl": "https://guildhall.example.gov.uk?council=tandridge"}, "no path"),
    "url-without-a-scheme": ({"publicUrl": "guildhall.example.gov.uk"}, "must start with https://"),
    "url-scheme-only": ({"publicUrl": "https://"}, "must start with https://"),
    "url-other-scheme": ({"publicUrl": "ftp://guildhall.example.gov.uk"}, "must start with https://"),
    "plain-http-off-loopback": ({"publicUrl": "http://guildhall.example.gov.uk"}, "only loopback addresses may"),
    "plain-http-to-a-private-address": ({"publicUrl": "http://10.0.0.5:8080"}, "only loopback addresses may"),
}


def toml_console(console: dict[str, Any]) -> str:
    """`[console]` written by hand, for values the chart refuses to render."""
    return "[console]\n" + "".join(f"{CONSOLE_KEYS[k]} = {json.dumps(v)}\n" for k, v in console.items())


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_chart_refuses_the_binary_refuses(guildhall_bin: Path, tmp_path: Path, case: str) -> None:
    """Each value is refused by the schema, by the templates without it, and by the server,
    which will not start (`guildhall serve` exits naming the key) when it is written into
    [console] by hand."""
    console, binary_says = REFUSED[case]
    with pytest.raises(helm.HelmValuesError):
        render({"console": console})
    with pytest.raises(helm.HelmRenderError, match=r"console\.(idleTimeoutMins|absoluteTimeoutHours|publicUrl)"):
        render({"console": console}, chart=chart_without_schema(tmp_path))
    config = tmp_path / "guildhall.toml"
    config.write_text(f'listen = "127.0.0.1:0"\n\n[log]\nformat = "text"\n\n[runtime]\ncache_dir = "{tmp_path / "cache"}"\n\n' + toml_console(console))
    server = Server(guildhall_bin, config).serve
    server.listening.wait(60)
    if server.address is not None:
        server.terminate()
        pytest.fail(f"the server started with what the chart refuses:\n{config.read_text()}")
    code = server.proc.wait(30)
    server.reader.join(10)
    assert code != 0
    assert "invalid [console]" in server.log() and binary_says in server.log(), server.log()


@pytest.mark.parametrize(
    "console",
    [
        {"enabled": "false"},
        {"secureCookies": "no"},
        {"tokenSignIn": "yes"},
        {"idleTimeoutMins": 2.5},
        {"idleTimeoutMins": "30"},
        {"absoluteTimeoutHours": -1},
        {"publicUrl": 8080},
    ],
    ids=["enabled-a-string", "secure-cookies-a-string", "token-sign-in-a-string", "idle-a-fraction", "idle-a-string", "absolute-negative", "url-a-number"],
)
def test_values_of_the_wrong_type_are_refused_everywhere(guildhall_bin: Path, tmp_path: Path, console: dict[str, Any]) -> None:
    """The schema, the templates without it, and the binary's loader (`config check`) all
    refuse them."""
    with pytest.raises(helm.HelmValuesError):
        render({"console": console})
    with pytest.raises(helm.HelmRenderError, match=r"console\."):
        render({"console": console}, chart=chart_without_schema(tmp_path))
    config = tmp_path / "guildhall.toml"
    config.write_text(toml_console(console))
    checked = run(guildhall_bin, config, "config", "check")
    assert checked.returncode != 0, f"the binary's loader accepts:\n{config.read_text()}"
    assert "console" in checked.stderr and CONSOLE_KEYS[next(iter(console))] in checked.stderr, checked.stderr


@pytest.mark.parametrize(
    "console",
    [{"public_url": "https://guildhall.example.gov.uk"}, {"idle_timeout_mins": 10}, {"sessionTimeoutMins": 10}, "on"],
    ids=["toml-spelling", "toml-spelling-timeout", "unknown-key", "not-a-map"],
)
def test_unknown_console_values_are_refused_by_the_schema(console: Any) -> None:
    with pytest.raises(helm.HelmValuesError):
        render({"console": console})


def test_the_ingress_never_derives_a_public_url_the_binary_refuses() -> None:
    """Hosts the chart would not turn into an address (wildcards) leave it unset rather than
    rendering something the server refuses; a plain host name gives https://<host>."""
    for host in ["*.example.gov.uk", "guildhall.example.gov.uk", "a.b-c.example.gov.uk"]:
        console = server_toml(render_objects({"ingress": ingress(host, tls=[host])}))["console"]
        if host.startswith("*"):
            assert "public_url" not in console
        else:
            assert console["public_url"] == f"https://{host}"
