"""``shipyard tokens``: API tokens for the team server (create, list, revoke) and its audit log."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shipyard.cli._common import JsonOption, client, console, emit_json, record, when
from shipyard.errors import ConfigError
from shipyard.server._auth_tokens import issue_token, revoke_token
from shipyard.store.auth import ROLES
from shipyard.store.protocols import AuthStore

app = typer.Typer(help="API tokens for `shipyard server`, and its audit log.", no_args_is_help=True)

RoleOption = Annotated[str, typer.Option("--role", help="reader, writer or admin (admin > writer > reader)")]


def _auth() -> AuthStore:
    c = client()
    if c.stores.auth is None:
        raise ConfigError(
            f"the store {c.settings.store_uri.split('://', 1)[0]}:// keeps no tokens; "
            "run `shipyard tokens` against the server's database (SHIPYARD_STORE=postgresql://...)"
        )
    return c.stores.auth


@app.command("create")
def create(name: Annotated[str, typer.Argument(help="a unique name: who or what uses it")], role: RoleOption) -> None:
    """Create a token; it is printed once, alone on the last line (stored only as a hash)."""
    if role not in ROLES:
        raise typer.BadParameter(f"{role!r} is not one of {', '.join(ROLES)}", param_hint="'--role'")
    token, secret = issue_token(_auth(), name, role)
    typer.echo(f"created token {token.name!r} ({token.role}), id {token.id}; it is shown only now:")
    typer.echo(secret)


@app.command("list")
def list_tokens(as_json: JsonOption = False) -> None:
    """List tokens (never their secret), revoked ones included."""
    tokens = _auth().list_tokens()
    if as_json:
        emit_json(record(t) for t in tokens)
        return
    table = Table("name", "role", "created", "last used", "revoked")
    table.add_column("id", no_wrap=True)
    for t in tokens:
        table.add_row(t.name, t.role, when(t.created_at), when(t.last_used), when(t.revoked_at), t.id)
    console.print(table)


@app.command("revoke")
def revoke(id_or_name: Annotated[str, typer.Argument(help="the token's id or name")]) -> None:
    """Revoke a token: the server refuses it from its next request on."""
    token = revoke_token(_auth(), id_or_name)
    console.print(f"revoked token {token.name!r} ({token.id}) at {when(token.revoked_at)}")


@app.command("audit")
def audit(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="how many entries, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log: who wrote what, when, and with what status."""
    entries = _auth().list_audit(limit=limit)
    if as_json:
        emit_json(record(e) for e in entries)
        return
    table = Table("when", "who", "what", "status", "client")
    for e in entries:
        table.add_row(when(e.at), e.principal, e.action, str(e.status), e.client or "-")
    console.print(table)
