"""The web UI: server-rendered pages (Jinja2 + htmx) mounted into the server app."""

from __future__ import annotations

from typing import Any


def mount_ui(app: Any, stores: Any) -> None:
    """Add the UI's pages and static files to ``app``."""
