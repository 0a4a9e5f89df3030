"""The HTTP side of the REST backend: one pooled ``httpx.Client`` per server, errors mapped back to shipyard's."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError

from shipyard.errors import InvalidInputError, ShipyardError, StoreUnavailableError
from shipyard.store.entities import Page
from shipyard.store.registry import redact_uri
from shipyard.store.rest._spec import GROUPS, Operation, operations

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def _error_types() -> dict[str, type[ShipyardError]]:
    found: dict[str, type[ShipyardError]] = {}
    pending: list[type[ShipyardError]] = [ShipyardError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


CODES = _error_types()


def raise_for(response: httpx.Response) -> None:
    """Re-raise a server's ``{"error": ...}`` body as the shipyard error with that code."""
    if response.status_code < 400:
        return
    try:
        body = response.json()["error"]
        code, message, field = str(body["code"]), str(body["message"]), body.get("field")
    except (ValueError, KeyError, TypeError):
        code, message, field = "error", f"{response.status_code} {response.reason_phrase}", None
    cls = CODES.get(code, ShipyardError)
    exc = cls.__new__(cls)  # subclasses with extra constructor arguments still get message and field
    Exception.__init__(exc, message)
    exc.message, exc.field = message, field
    raise exc


class RestClient:
    """The connection pool to one shipyard server and the call of one store operation."""

    def __init__(self, uri: str, *, token: str | None = None) -> None:
        self.uri = uri.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.uri, headers=headers, timeout=TIMEOUT)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request; a transport failure is ``StoreUnavailableError``, an error body its own error."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"shipyard server {redact_uri(self.uri)} is unreachable: {exc}") from exc
        raise_for(response)
        return response

    def call(self, op: Operation, arguments: dict[str, Any]) -> Any:
        """Run ``op`` on the server: one request, the result decoded into the same types."""
        try:
            args = op.args(**arguments)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidInputError(f"{op.name}: {field}: {first['msg']}", field=field) from exc
        if op.verb == "GET":
            params = {k: v for k, v in args.model_dump(mode="json").items() if v is not None}
            response = self.request("GET", op.path, params=params)
        else:
            body = args.model_dump_json().encode()
            response = self.request("POST", op.path, content=body, headers={"content-type": "application/json"})
        decoded = op.result.model_validate_json(response.content)
        if op.paged:
            return Page(decoded.result, decoded.next_page_token)  # type: ignore[attr-defined]
        return decoded.result  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the pool."""
        self.http.close()


class RestStore:
    """One store Protocol (``runs``, ``models``, ...) served by a shipyard server."""

    def __init__(self, client: RestClient, group: str) -> None:
        self._client, self._group = client, group

    def __getattr__(self, name: str) -> Callable[..., Any]:
        op = operations().get((self._group, name))
        if op is None:
            raise AttributeError(f"{GROUPS[self._group].__name__} has no operation {name!r}")
        signature = inspect.signature(getattr(GROUPS[self._group], name))
        client = self._client

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(None, *args, **kwargs)
            arguments = dict(list(bound.arguments.items())[1:])
            return client.call(op, arguments)

        call.__name__ = name
        setattr(self, name, call)  # resolved once per store
        return call

    def __repr__(self) -> str:
        return f"RestStore({self._group!r}, {redact_uri(self._client.uri)!r})"
