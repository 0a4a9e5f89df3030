"""``shipyard ui``: the web UI on the embedded store, on a loopback address (no login)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli._common import client
from shipyard.errors import InvalidInputError
from shipyard.store import Stores


def build_app(stores: Stores) -> Any:
    """The server app (REST API and UI, no login) over ``stores``; ``/`` leads to ``/ui/``."""
    from fastapi.responses import RedirectResponse

    from shipyard.server.app import create_app

    app = create_app(stores, auth="none")  # loopback only: ``ui`` refuses any other host
    app.add_api_route("/", lambda: RedirectResponse("/ui/", 307), include_in_schema=False)
    return app


def ui(
    host: Annotated[str, typer.Option(help="Address to listen on; loopback only (the UI runs without login).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
) -> None:
    """Run the web UI on the embedded store: runs, models, datasets, features, flows, monitoring.

    Example: shipyard ui --port 5000   (then open http://127.0.0.1:5000/ui/)
    """
    from shipyard.server.app import loopback  # the same check as ``shipyard server --auth none``

    if not loopback(host):
        raise InvalidInputError(
            f"--host {host!r} is not a loopback address; `shipyard ui` has no login, "
            "use `shipyard server` to share the UI",
            field="host",
        )
    if not 0 < port < 65536:
        raise InvalidInputError(f"--port must be 1-65535, got {port}", field="port")
    import uvicorn

    app = build_app(client().stores)
    typer.echo(f"shipyard UI on http://{host}:{port}/ui/ (Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
