"""The one tree of errors shipyard raises.

    ShipyardError                      code="error"            500
    ├── NotFoundError (LookupError)    code="not_found"        404
    ├── InvalidInputError (ValueError) code="invalid_input"    400
    │   ├── InvalidFilterError         code="invalid_filter"   400
    │   ├── SchemaMismatchError        code="schema_mismatch"  422
    │   └── PayloadTooLargeError       code="payload_too_large" 413
    ├── ConflictError                  code="conflict"         409
    ├── IntegrityError                 code="integrity"        500
    ├── ConfigError                    code="config"           500
    ├── ModelFailedError               code="model_failed"     500
    ├── TaskRunError (RuntimeError)    code="task_failed"      500
    ├── FlowRunError (RuntimeError)    code="flow_failed"      500
    ├── OverloadedError                code="overloaded"       503
    └── StoreUnavailableError          code="store_unavailable" 503

Every error carries a machine-readable ``code``, an HTTP ``status`` and, where
one input is to blame, the ``field`` that was wrong. Leaves also inherit the
builtin they mean, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    """Base of every error shipyard raises on purpose."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the server answers with."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class NotFoundError(ShipyardError, LookupError):
    """A named thing (experiment, run, model, version, alias, artifact) does not exist."""

    code = "not_found"
    status = 404


class InvalidInputError(ShipyardError, ValueError):
    """An argument has the wrong type or value."""

    code = "invalid_input"
    status = 400


class InvalidFilterError(InvalidInputError):
    """A ``search_runs`` filter does not parse; the message points at the position."""

    code = "invalid_filter"

    def __init__(self, message: str, *, text: str, position: int) -> None:
        caret = " " * position + "^"
        super().__init__(f"{message} at position {position}:\n  {text}\n  {caret}", field="filter")
        self.position = position


class SchemaMismatchError(InvalidInputError):
    """Input to a model does not match its signature; ``problems`` names each column."""

    code = "schema_mismatch"
    status = 422

    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message, field="inputs")
        self.problems = problems


class ConflictError(ShipyardError):
    """The request conflicts with the current state (a name already taken, a run already ended)."""

    code = "conflict"
    status = 409


class IntegrityError(ShipyardError):
    """Stored bytes do not match their recorded hash: an artifact was corrupted or tampered with."""

    code = "integrity"
    status = 500


class ConfigError(ShipyardError):
    """Settings are malformed: an unknown URI scheme, an unreadable ``shipyard.toml``."""

    code = "config"
    status = 500


class StoreUnavailableError(ShipyardError):
    """The metadata or artifact store cannot be reached."""

    code = "store_unavailable"
    status = 503


class PayloadTooLargeError(InvalidInputError):
    """A request body is larger than the server's limit."""

    code = "payload_too_large"
    status = 413


class OverloadedError(ShipyardError):
    """A model's queue is full: the client should retry after ``retry_after`` seconds."""

    code = "overloaded"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelFailedError(ShipyardError):
    """The model raised on input that passed validation (a bug or a limit of the model)."""

    code = "model_failed"
    status = 500


class TaskRunError(ShipyardError, RuntimeError):
    """A task did not produce a value: it failed, timed out, was skipped or cancelled.

    ``future.result()`` re-raises the task's own exception when there is one; this error
    covers the rest (an upstream task failed, the run was cancelled, a timeout).
    """

    code = "task_failed"
    status = 500

    def __init__(self, message: str, *, task_key: str, state: str) -> None:
        super().__init__(message, field=task_key)
        self.task_key = task_key
        self.state = state


class FlowRunError(ShipyardError, RuntimeError):
    """Calling a flow whose run did not succeed; ``flow_run`` (alias ``run``) is the recorded
    ``FlowRun`` and ``failed_tasks`` the keys of its failed task runs.
    """

    code = "flow_failed"
    status = 500

    def __init__(self, message: str, *, run: Any, failed_tasks: tuple[str, ...] = ()) -> None:
        super().__init__(message, field="flow_run")
        self.run = self.flow_run = run
        self.failed_tasks = failed_tasks
