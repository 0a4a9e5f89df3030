"""``shipyard server``: the team server (REST API over every store operation, auth, web UI) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.errors import InvalidInputError


def server(
    store: Annotated[
        str | None, typer.Option(help="Metadata store URI (sqlite:///..., postgresql://...); default: SHIPYARD_STORE.")
    ] = None,
    artifacts: Annotated[
        str | None, typer.Option(help="Artifact store URL (file://..., s3://...); default: SHIPYARD_ARTIFACTS.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    auth: Annotated[str, typer.Option(help="token (API tokens, the default) or none (loopback only).")] = "token",
) -> None:
    """Serve the stores to a team: /api/v1 (every store operation), /docs, and the web UI.

    Example: shipyard server --store postgresql://db/shipyard --artifacts s3://bucket/art --host 0.0.0.0
    """
    from shipyard.server.app import loopback

    if auth not in ("token", "none"):
        raise InvalidInputError(f"--auth must be token or none, got {auth!r}", field="auth")
    if auth == "none" and not loopback(host):
        raise InvalidInputError(
            f"--auth none lets anyone act as admin; it is allowed only on a loopback host, not {host!r}", field="auth"
        )
    if not 0 < port < 65536:
        raise InvalidInputError(f"--port must be 1-65535, got {port}", field="port")
    import uvicorn

    from shipyard.config import resolve_settings
    from shipyard.server.app import create_app

    settings = resolve_settings(store_uri=store, artifact_uri=artifacts)
    if settings.store_uri.startswith(("http://", "https://")):
        raise InvalidInputError("--store must be a database URI, not another shipyard server", field="store")
    app = create_app(settings, auth="none" if auth == "none" else "token")
    uvicorn.run(app, host=host, port=port, log_level="info")
