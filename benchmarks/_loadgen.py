"""A closed-loop HTTP/1.1 load generator on raw asyncio sockets that checks every answer.

N keep-alive connections, one request in flight on each. The requests come from a JSON
lines file, one ``{"body": ..., "expected": ...}`` per line; each connection cycles
through them from its own offset. Every response is parsed and the value at
``--answer-key`` (a dotted path into the JSON body; empty for the whole body) is compared
with that request's ``expected``: a 200 with the wrong answer counts as ``wrong``, not as a
success. Standard library only (uvloop when importable), so it is never the bottleneck
an HTTP client library would be, and both venvs can run it. Every loop is bounded by
``--duration`` seconds and ``--max-requests``. Prints one JSON line::

    python benchmarks/_loadgen.py --url http://127.0.0.1:8000/models/m/predict --requests reqs.jsonl \
        --answer-key predictions --concurrency 32 --duration 15 --warmup 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Case:
    """One request ready to write, and the answer it must get."""

    payload: bytes
    expected: Any


@dataclass
class Tally:
    """What the clients saw: latencies of verified answers, failures, wrong answers (a few kept)."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wrong: int = 0
    answered: int = 0  # every response read, warm-up included (the CPU-per-request denominator)
    samples: list[str] = field(default_factory=list)


def _payload(url: str, body: bytes, content_type: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    method = "POST" if body else "GET"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
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
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            parts.append((await reader.readexactly(size + 2))[:size])
            if size == 0:
                break
        return status, b"".join(parts)
    return status, (await reader.readexactly(length)) if length else b""


def _answer(body: bytes, key: list[str]) -> Any:
    value = json.loads(body)
    for part in key:
        value = value[part]
    return value


async def _client(
    host: str,
    port: int,
    cases: list[Case],
    offset: int,
    key: list[str],
    window: tuple[float, float],
    budget: list[int],
    tally: Tally,
) -> None:
    record_from, stop_at = window
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while budget[0] > 0:
            started = time.perf_counter()
            if started >= stop_at:
                return
            budget[0] -= 1
            case = cases[i % len(cases)]
            i += 1
            writer.write(case.payload)
            try:
                status, body = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                tally.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            done = time.perf_counter()
            tally.answered += 1
            try:
                correct = status == 200 and _answer(body, key) == case.expected
            except (ValueError, KeyError, IndexError, TypeError):
                correct = False
            if not correct:
                if status == 200:
                    tally.wrong += 1
                else:
                    tally.errors += 1
                if len(tally.samples) < 3:
                    tally.samples.append(f"{status} {body[:200]!r}, expected {case.expected!r}")
            elif started >= record_from:
                tally.latencies.append(done - started)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def run(
    url: str,
    requests: list[dict[str, Any]],
    *,
    answer_key: str,
    concurrency: int,
    duration: float,
    warmup: float,
    max_requests: int,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """Drive ``url`` for ``warmup + duration`` seconds; report what happened after the warm-up."""
    cases = []
    for item in requests:
        host, port, payload = _payload(url, json.dumps(item["body"]).encode(), content_type)
        cases.append(Case(payload, item["expected"]))
    key = [part for part in answer_key.split(".") if part]
    begin = time.perf_counter()
    window = (begin + warmup, begin + warmup + duration)
    tally = Tally()
    budget = [max_requests]
    step = max(1, len(cases) // concurrency)
    await asyncio.gather(
        *(_client(host, port, cases, n * step, key, window, budget, tally) for n in range(concurrency))
    )
    latencies = sorted(tally.latencies)
    measured = min(time.perf_counter(), window[1] + 5) - window[0]

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "requests": len(latencies),
        "answered": tally.answered,
        "errors": tally.errors,
        "wrong": tally.wrong,
        "samples": tally.samples,
        "seconds": round(measured, 3),
        "rps": round(len(latencies) / measured, 1) if measured > 0 else 0.0,
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", required=True, help='JSON lines: {"body": ..., "expected": ...}')
    parser.add_argument("--answer-key", default="", help="dotted path to the answer in a response body")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    args = parser.parse_args()
    with open(args.requests, encoding="utf-8") as handle:
        requests = [json.loads(line) for line in handle if line.strip()]
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(
        run(
            args.url,
            requests,
            answer_key=args.answer_key,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            max_requests=args.max_requests,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
