"""schemathesis against ``/openapi.json`` of a live server: generated requests to every operation, no 5xx."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")

from hypothesis import HealthCheck, settings  # noqa: E402

from shipyard.server._thread import serving  # noqa: E402
from shipyard.server.app import create_app  # noqa: E402
from shipyard.store import close_stores  # noqa: E402
from shipyard.testing import ServiceMissing, in_ci, postgres_schema, sqlite_settings  # noqa: E402

EXAMPLES_PER_OPERATION = 8


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_schema(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The OpenAPI schema, loaded from a live server (auth none) over a fresh SQLite store or PostgreSQL schema."""
    backing = sqlite_settings(Path(tmp_path_factory.mktemp("schemathesis")))
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            try:
                uri = stack.enter_context(postgres_schema())
            except ServiceMissing as exc:
                if in_ci():
                    pytest.fail(f"{exc} (CI=true: integration services must be present)")
                pytest.skip(str(exc))
            backing = replace(backing, store_uri=uri)
        stack.callback(close_stores, backing)
        url = stack.enter_context(serving(create_app(backing, auth="none")))
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_no_operation_answers_5xx(api_schema: object) -> None:
    """Every operation gets generated requests (valid and invalid); none answers 5xx."""
    from hypothesis import given

    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[attr-defined]
    assert len(operations) >= 70

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call()
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:200]}")

        check()
    assert not failures, "\n".join(failures[:20])
