"""uvicorn's httptools protocol, sending a response's header block and body in one write.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start``, then the body in a second write: two ``send`` system calls and
two TCP segments per response, which the client wakes up for twice. Here the header
block is held until the body's write joins it (the same event-loop step, for every
response shipyard sends) and is released at the end of the step in any case, so a
response without a body write is never held back. py-spy put the second write at about
a tenth of the event loop's busy time under ``benchmarks/serving.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _OneWrite:
    """A transport that holds a header block until the next write (or the end of the loop step)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self._release)
        else:
            self._transport.write(data)

    def _release(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpTools(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` over a :class:`_OneWrite` transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWrite(transport, self.loop))  # type: ignore[arg-type]
