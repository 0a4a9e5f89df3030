"""The flow run in progress in this context: task calls inside a flow function submit to it."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.flows._runner import Runner

current_runner: contextvars.ContextVar[Runner | None] = contextvars.ContextVar("shipyard_flow_runner", default=None)
