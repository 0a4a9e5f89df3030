"""The flow run in progress in this context: task calls inside a flow function submit to it."""

from __future__ import annotations

import contextvars

from shipyard.flows._protocols import Submitter

current_runner: contextvars.ContextVar[Submitter | None] = contextvars.ContextVar("shipyard_flow_runner", default=None)
