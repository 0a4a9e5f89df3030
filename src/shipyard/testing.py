"""Fixtures' building blocks shared by shipyard's tests and by users testing code that logs.

Real services only: a PostgreSQL schema per test, moto's S3 server on loopback. A service
that is absent makes the test skip with the reason, unless ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shipyard.config import Settings, resolve_settings

POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    """True under CI, where a missing service is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class ServiceMissing(RuntimeError):
    """A service a test needs is not reachable."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_schema(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh PostgreSQL schema; yields a store URI whose search_path points at it."""
    from sqlalchemy import create_engine, text

    if not port_open("127.0.0.1", 5432):
        raise ServiceMissing("PostgreSQL is not listening on 127.0.0.1:5432")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{base_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server on loopback and a bucket in it."""

    endpoint_url: str
    bucket: str


@contextlib.contextmanager
def moto_s3_server() -> Iterator[S3Server]:
    """Start moto's S3 server in a subprocess on a free loopback port; stop it afterwards."""
    try:
        import boto3
    except ImportError as exc:
        raise ServiceMissing("moto/boto3 are not installed (pip install 'shipyard[dev]')") from exc
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServiceMissing("moto's S3 server did not start")
            time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        bucket = "shipyard-" + uuid.uuid4().hex[:8]
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        yield S3Server(endpoint, bucket)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sqlite_settings(folder: Path, **overrides: object) -> Settings:
    """Settings for an embedded store in ``folder``."""
    settings = resolve_settings(
        store_uri=f"sqlite:///{folder / 'shipyard.db'}",
        artifact_uri=f"file://{folder / 'artifacts'}",
        cwd=folder,
        env={},
    )
    return _replace(settings, **overrides)


def _replace(settings: Settings, **overrides: object) -> Settings:
    from dataclasses import replace

    return replace(settings, **overrides)  # type: ignore[arg-type]
