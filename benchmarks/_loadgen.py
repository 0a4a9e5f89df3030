"""A closed-loop HTTP/1.1 load generator on raw asyncio sockets: N keep-alive connections, one request in flight each.

Standard library only (uvloop when importable), so it is never the bottleneck an
HTTP client library would be, and both venvs can run it. Every loop is bounded by
``--duration`` seconds and ``--max-requests``. Prints one JSON line::

    python benchmarks/_loadgen.py --url http://127.0.0.1:8000/models/m/predict --body '{"records": [...]}' \
        --concurrency 32 --duration 15 --warmup 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from urllib.parse import urlsplit


def _request(url: str, body: bytes, content_type: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    method = "POST" if body else "GET"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _client(
    host: str,
    port: int,
    payload: bytes,
    stop_at: float,
    record_from: float,
    budget: list[int],
    out: dict[str, list[float]],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget[0] > 0:
            started = time.perf_counter()
            if started >= stop_at:
                return
            budget[0] -= 1
            writer.write(payload)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                out["errors"].append(started)
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            done = time.perf_counter()
            if started >= record_from:
                (out["latencies"] if status == 200 else out["errors"]).append(done - started)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def run(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    max_requests: int,
    content_type: str = "application/json",
) -> dict[str, float]:
    """Drive ``url`` for ``warmup + duration`` seconds; report what happened after the warm-up."""
    host, port, payload = _request(url, body, content_type)
    begin = time.perf_counter()
    record_from, stop_at = begin + warmup, begin + warmup + duration
    out: dict[str, list[float]] = {"latencies": [], "errors": []}
    budget = [max_requests]
    await asyncio.gather(*(_client(host, port, payload, stop_at, record_from, budget, out) for _ in range(concurrency)))
    latencies = sorted(out["latencies"])
    measured = min(time.perf_counter(), stop_at + 5) - record_from

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "requests": len(latencies),
        "errors": len(out["errors"]),
        "seconds": round(measured, 3),
        "rps": round(len(latencies) / measured, 1) if measured > 0 else 0.0,
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", default="", help="request body (POST when given)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(
        run(
            args.url,
            args.body.encode(),
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            max_requests=args.max_requests,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
