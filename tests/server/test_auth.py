"""Auth on a real FastAPI app: roles per route class, revocation, login, CSRF, rate limit, audit, headers."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse

from shipyard.client import Client
from shipyard.config import Settings
from shipyard.errors import ShipyardError
from shipyard.server.auth import Principal, csrf_token, install, issue_token, role_required
from shipyard.store import Stores, close_stores
from shipyard.store.protocols import AuthStore
from shipyard.testing import free_port, port_open
from tests.serving.conftest import running

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
CLASSES = {
    "read": ("GET", "/api/v1/things"),
    "write": ("POST", "/api/v1/things"),
    "admin": ("DELETE", "/api/v1/things"),
}


def _app(stores: Stores, mode: Any = "token") -> FastAPI:
    """Three API routes, one per class, plus a UI page with a form, all guarded by ``role_required``."""
    app = FastAPI()

    @app.get("/api/v1/things", dependencies=[Depends(role_required("reader"))])
    def read(request: Request) -> dict[str, str]:
        principal: Principal = request.state.principal
        return {"principal": principal.name, "role": principal.role}

    @app.post("/api/v1/things", dependencies=[Depends(role_required("writer"))])
    def write() -> dict[str, bool]:
        return {"written": True}

    @app.delete("/api/v1/things", dependencies=[Depends(role_required("admin"))])
    def admin() -> dict[str, bool]:
        return {"deleted": True}

    @app.get("/ui/page", dependencies=[Depends(role_required("reader"))])
    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(f'<form method="post"><input name="csrf_token" value="{csrf_token(request)}"></form>')

    @app.post("/ui/trigger", dependencies=[Depends(role_required("writer"))])
    def trigger(flow: Annotated[str, Form()]) -> dict[str, str]:
        return {"triggered": flow}

    install(app, stores, mode=mode)
    return app


Serve = Callable[..., httpx.Client]


@pytest.fixture
def serve(stores: Stores) -> Iterator[Serve]:
    """Start ``_app`` under a real uvicorn on a loopback port; returns a client for it."""
    with contextlib.ExitStack() as stack:

        def start(mode: Any = "token", **client_options: Any) -> httpx.Client:
            url = stack.enter_context(running(_app(stores, mode)))
            return stack.enter_context(httpx.Client(base_url=url, timeout=30, **client_options))

        yield start


def _auth(stores: Stores) -> AuthStore:
    assert stores.auth is not None
    return stores.auth


def _tokens(stores: Stores) -> dict[str, str]:
    return {
        role: issue_token(_auth(stores), f"{role}-token", role, by="test")[1] for role in ("reader", "writer", "admin")
    }


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _login(client: httpx.Client, secret: str, next_path: str = "/ui/page") -> httpx.Response:
    csrf = _csrf(client.get("/login").text)
    return client.post("/login", data={"token": secret, "csrf_token": csrf, "next": next_path}, follow_redirects=False)


def test_each_role_against_each_class_of_route(stores: Stores, serve: Serve) -> None:
    secrets = _tokens(stores)
    client = serve()
    seen = {
        (role, cls): client.request(method, path, headers=_bearer(secret)).status_code
        for role, secret in secrets.items()
        for cls, (method, path) in CLASSES.items()
    }
    assert seen == {
        ("reader", "read"): 200, ("reader", "write"): 403, ("reader", "admin"): 403,
        ("writer", "read"): 200, ("writer", "write"): 200, ("writer", "admin"): 403,
        ("admin", "read"): 200, ("admin", "write"): 200, ("admin", "admin"): 200,
    }  # fmt: skip
    refused = client.post("/api/v1/things", headers=_bearer(secrets["reader"]))
    assert refused.json()["error"]["code"] == "forbidden"
    assert "needs writer" in refused.json()["error"]["message"]
    assert client.get("/api/v1/things", headers=_bearer(secrets["writer"])).json() == {
        "principal": "writer-token",
        "role": "writer",
    }


def test_each_role_against_the_real_server_routes(stores: Stores) -> None:
    from shipyard.server.app import create_app

    secrets = _tokens(stores)
    real = {
        "read": ("GET", "/api/v1/runs/list_experiments", None),
        "write": ("POST", "/api/v1/runs/create_experiment", {"name": "e"}),
        "admin": ("GET", "/api/v1/admin/audit", None),
    }
    with running(create_app(stores, auth="token")) as url, httpx.Client(base_url=url, timeout=30) as http:
        seen = {
            (role, cls): http.request(
                method, path, headers=_bearer(secret), json=body and {"name": f"{body['name']}-{role}"}
            ).status_code
            for role, secret in secrets.items()
            for cls, (method, path, body) in real.items()
        }
        anonymous = {
            cls: http.request(method, path, json=body).status_code for cls, (method, path, body) in real.items()
        }
    assert seen == {
        ("reader", "read"): 200, ("reader", "write"): 403, ("reader", "admin"): 403,
        ("writer", "read"): 200, ("writer", "write"): 200, ("writer", "admin"): 403,
        ("admin", "read"): 200, ("admin", "write"): 200, ("admin", "admin"): 200,
    }  # fmt: skip
    assert anonymous == {"read": 401, "write": 401, "admin": 401}
    assert sorted(e.name for e in stores.runs.list_experiments()) == ["e-admin", "e-writer"]


def test_the_client_sends_its_token_and_gets_its_role(
    stores: Stores, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.server.app import create_app

    secrets = _tokens(stores)
    with running(create_app(stores)) as url:
        remote = {role: replace(settings, store_uri=url, token=secrets[role]) for role in ("reader", "writer")}
        try:
            assert Client(settings=remote["writer"]).create_experiment("by-writer").name == "by-writer"
            reader = Client(settings=remote["reader"])
            assert [e.name for e in reader.list_experiments()] == ["by-writer"]
            with pytest.raises(ShipyardError, match="has role reader; this needs writer"):
                reader.create_experiment("by-reader")
            monkeypatch.setenv("SHIPYARD_STORE", url)
            monkeypatch.setenv("SHIPYARD_TOKEN", "sy_unknown")
            with pytest.raises(ShipyardError, match="not known"):
                Client().list_experiments()
        finally:
            for remote_settings in remote.values():
                close_stores(remote_settings)
            close_stores(replace(settings, store_uri=url, token="sy_unknown"))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sy_not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["none", "unknown", "not-bearer"],
)
def test_missing_or_unknown_credentials_are_401_with_a_bearer_challenge(serve: Serve, headers: dict[str, str]) -> None:
    client = serve()
    for method, path in CLASSES.values():
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthenticated"


def test_a_revoked_token_fails_at_once_on_a_live_server(stores: Stores) -> None:
    secret = issue_token(_auth(stores), "ci", "writer", by="test")[1]
    with running(_app(stores)) as url, httpx.Client(base_url=url, headers=_bearer(secret)) as http:
        assert http.post("/api/v1/things").status_code == 200
        revoked = subprocess.run(
            [SHIPYARD, "tokens", "revoke", "ci"], capture_output=True, text=True, env=os.environ, timeout=120
        )
        assert revoked.returncode == 0, revoked.stderr
        response = http.post("/api/v1/things")
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]["message"]
        assert http.get("/api/v1/things").status_code == 401


def test_mode_none_makes_every_request_a_local_admin(stores: Stores, serve: Serve) -> None:
    client = serve(mode="none")
    assert client.delete("/api/v1/things").status_code == 200
    assert client.get("/api/v1/things").json() == {"principal": "local", "role": "admin"}


def test_mode_none_refuses_writes_from_another_site(stores: Stores, serve: Serve) -> None:
    """With no login, a page on another site must not drive writes (a no-cors fetch carries no cookie)."""
    client = serve(mode="none")
    refused = client.post("/api/v1/things", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "cross_origin"
    host = client.base_url.netloc.decode()
    assert client.post("/api/v1/things", headers={"Origin": f"http://{host}"}).status_code == 200
    assert client.post("/api/v1/things").status_code == 200  # a script sends no Origin


def test_login_sets_a_session_that_works_until_logout(stores: Stores, serve: Serve) -> None:
    secret = _tokens(stores)["writer"]
    client = serve()
    assert client.get("/api/v1/things").status_code == 401
    response = _login(client, secret)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/page"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http here
    assert secret not in response.headers["set-cookie"]
    assert client.get("/api/v1/things").json()["principal"] == "writer-token"
    page = client.get("/ui/page")
    assert page.status_code == 200
    csrf = _csrf(page.text)
    assert client.post("/ui/trigger", data={"flow": "etl", "csrf_token": csrf}).json() == {"triggered": "etl"}
    logout = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert logout.status_code == 303
    assert client.get("/api/v1/things").status_code == 401


def test_the_session_cookie_is_secure_over_https_and_ends_with_its_token(stores: Stores, serve: Serve) -> None:
    secret = _tokens(stores)["reader"]
    client = serve(headers={"X-Forwarded-Proto": "https"})  # as behind a TLS proxy on loopback
    page = client.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()

    def cookie() -> dict[str, str]:  # httpx keeps a Secure cookie off plain http, so send it by hand
        return {"Cookie": f"shipyard_session={client.cookies['shipyard_session']}"}

    form = {"token": secret, "csrf_token": _csrf(page.text)}
    response = client.post("/login", data=form, headers=cookie())
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()
    assert client.get("/api/v1/things", headers=cookie()).status_code == 200
    _auth(stores).revoke_token("reader-token", at=1.0)
    assert client.get("/api/v1/things", headers=cookie()).status_code == 401


def test_ui_forms_without_the_session_csrf_token_are_refused(stores: Stores, serve: Serve) -> None:
    secret = _tokens(stores)["admin"]
    client = serve()
    stale = client.post("/login", data={"token": secret, "csrf_token": "guess"}, follow_redirects=False)
    assert stale.status_code == 403
    assert stale.json()["error"]["code"] == "csrf"
    assert _login(client, secret).status_code == 303
    for data in ({"flow": "etl"}, {"flow": "etl", "csrf_token": "guess"}):
        refused = client.post("/ui/trigger", data=data)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf"
    assert client.delete("/api/v1/things").status_code == 403  # the cookie alone does not carry a write
    csrf = _csrf(client.get("/ui/page").text)
    assert client.delete("/api/v1/things", headers={"X-CSRF-Token": csrf}).status_code == 200
    # A script with a bearer token carries no ambient credential, so it needs no CSRF token.
    assert serve().delete("/api/v1/things", headers=_bearer(secret)).status_code == 200


def test_an_unauthenticated_page_redirects_to_login_and_back_only_to_this_server(stores: Stores, serve: Serve) -> None:
    secret = _tokens(stores)["reader"]
    client = serve()
    redirect = client.get("/ui/page", follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/login?next=/ui/page"
    assert _login(client, secret, next_path="//evil.example/x").headers["location"] == "/"


def test_five_failed_logins_a_minute_then_429(stores: Stores, serve: Serve) -> None:
    secret = _tokens(stores)["reader"]
    client = serve()
    assert [_login(client, "sy_wrong").status_code for _ in range(5)] == [401] * 5
    limited = _login(client, secret)  # even the right token waits: no guessing past the limit
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "too_many_logins"


def test_writes_logins_and_token_changes_are_audited_for_admins_only(stores: Stores, serve: Serve) -> None:
    secrets = _tokens(stores)
    client = serve()
    client.post("/api/v1/things", headers=_bearer(secrets["writer"]))
    client.post("/api/v1/things", headers=_bearer(secrets["reader"]))
    client.get("/api/v1/things", headers=_bearer(secrets["writer"]))  # a read: not audited
    _login(client, "sy_wrong")
    assert client.get("/api/v1/admin/audit", headers=_bearer(secrets["writer"])).status_code == 403
    entries = client.get("/api/v1/admin/audit", headers=_bearer(secrets["admin"])).json()["entries"]
    seen = [(e["principal"], e["action"], e["status"]) for e in reversed(entries)]
    assert seen == [
        ("test", "token create reader-token (reader)", 200),
        ("test", "token create writer-token (writer)", 200),
        ("test", "token create admin-token (admin)", 200),
        ("writer-token", "POST /api/v1/things", 200),
        ("reader-token", "POST /api/v1/things", 403),
        ("anonymous", "login", 401),
    ]
    assert all(e["at"] > 0 for e in entries)
    assert entries[0]["client"] == "127.0.0.1"


def test_security_headers_on_pages(stores: Stores, serve: Serve) -> None:
    client = serve()
    for response in (client.get("/login"), client.get("/ui/page", follow_redirects=False)):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp


def test_tokens_and_cookies_never_reach_the_logs(
    stores: Stores, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    secret = _tokens(stores)["admin"]
    caplog.set_level(logging.INFO)  # httpcore's own DEBUG trace of the client's headers is not the server's log
    for server_side in ("shipyard", "uvicorn", "fastapi", "starlette", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=server_side)
    client = serve()
    client.get("/api/v1/things", headers=_bearer(secret))
    client.delete("/api/v1/things", headers=_bearer(secret))
    _login(client, secret)
    _login(client, secret + "x")
    assert caplog.records  # the requests were logged, just never with a secret
    assert secret not in caplog.text
    assert client.cookies["shipyard_session"] not in caplog.text
    audit = client.get("/api/v1/admin/audit", headers=_bearer(secret)).text
    assert secret not in audit


def test_tokens_create_prints_the_token_alone_on_its_last_line(stores: Stores, serve: Serve) -> None:
    created = subprocess.run(
        [SHIPYARD, "tokens", "create", "deploy-bot", "--role", "writer"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.splitlines()[-1]
    assert re.fullmatch(r"sy_[A-Za-z0-9_-]{43}", secret)
    client = serve()
    assert client.post("/api/v1/things", headers=_bearer(secret)).status_code == 200
    listed = subprocess.run([SHIPYARD, "tokens", "list", "--json"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "deploy-bot" in listed.stdout
    assert secret not in listed.stdout
    audit = subprocess.run([SHIPYARD, "tokens", "audit", "--json"], capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0, audit.stderr
    created_entry, posted = reversed(json.loads(audit.stdout))  # newest first
    assert created_entry["action"] == "token create deploy-bot (writer)"
    assert created_entry["principal"].startswith("cli")
    assert (posted["principal"], posted["action"]) == ("deploy-bot", "POST /api/v1/things")
    bad = subprocess.run(
        [SHIPYARD, "tokens", "create", "x", "--role", "root"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ")
    assert "'--role'" in bad.stderr


def test_unknown_roles_and_modes_are_refused_by_name(stores: Stores) -> None:
    with pytest.raises(ValueError, match="role 'root'"):
        role_required("root")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="auth mode 'open'") as info:
        install(FastAPI(), stores, mode="open")
    assert getattr(info.value, "field", None) == "auth"


def test_the_tokens_cli_starts_without_the_web_stack() -> None:
    probe = "import sys, shipyard.cli.main; print(sorted(m for m in ('starlette', 'fastapi') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_server_process_logs_requests_but_never_a_token(stores: Stores, tmp_path: Path) -> None:
    secret = _tokens(stores)["admin"]
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [SHIPYARD, "server", "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while not port_open("127.0.0.1", port):
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "shipyard server did not listen within 60 s"
                time.sleep(0.1)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                assert http.get("/api/v1/runs/list_experiments", headers=_bearer(secret)).status_code == 200
                assert http.post("/api/v1/runs/create_experiment", json={"name": "e"}).status_code == 401
                assert _login(http, secret).status_code == 303
                cookie = http.cookies["shipyard_session"]
        finally:
            server.terminate()
            server.wait(timeout=30)
    logged = log_path.read_text()
    assert "/api/v1/runs/list_experiments" in logged  # the access log is on
    assert secret not in logged
    assert cookie not in logged
