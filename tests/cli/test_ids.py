"""Ids that can be pasted back: a unique prefix (6+ hex characters) names a run or a flow run
in the library and the CLI alike, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

import shipyard as sy
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.flows._run import new_run
from shipyard.store import Stores
from shipyard.store.sql import runs as sql_runs

from .test_cli import _shipyard

TWINS = ("abcdef0123456789abcdef0123456789", "abcdef9876543210abcdef9876543210")


@pytest.fixture
def twin_runs(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Two runs whose ids share their first 6 characters (ids are random otherwise)."""
    ids: Iterator[str] = iter(TWINS)
    with sy.start_run(experiment="ids", name="warmup"):  # the experiment takes a random id first
        pass
    monkeypatch.setattr(sql_runs, "_new_id", lambda: next(ids))
    for name in ("first", "second"):
        with sy.start_run(experiment="ids", name=name):
            sy.log_metric("auc", 0.5)
    return TWINS


def test_a_unique_prefix_names_a_run(twin_runs: tuple[str, str]) -> None:
    client = sy.Client()

    assert client.get_run("abcdef0").id == TWINS[0]
    assert client.get_run("ABCDEF98").id == TWINS[1]
    assert client.get_run(TWINS[0]).name == "first"


def test_an_ambiguous_prefix_lists_the_matching_ids(twin_runs: tuple[str, str]) -> None:
    with pytest.raises(InvalidInputError, match="ambiguous") as info:
        sy.Client().get_run("abcdef")
    assert TWINS[0] in str(info.value)
    assert TWINS[1] in str(info.value)


def test_a_short_or_unknown_prefix_is_not_found(twin_runs: tuple[str, str]) -> None:
    client = sy.Client()

    with pytest.raises(NotFoundError, match="at least 6 hex characters"):
        client.get_run("abcde")
    with pytest.raises(NotFoundError, match="does not exist"):
        client.get_run("fedcba98")
    assert client.find_run("abcd") is None


def test_a_deleted_run_is_not_matched_by_a_prefix(twin_runs: tuple[str, str]) -> None:
    client = sy.Client()
    client.delete_run("abcdef98")

    assert client.get_run("abcdef").id == TWINS[0]  # no longer ambiguous
    with pytest.raises(NotFoundError):
        client.get_run("abcdef98")


def test_the_cli_says_which_ids_match(twin_runs: tuple[str, str]) -> None:
    ambiguous = _shipyard("runs", "show", "abcdef")
    unique = _shipyard("runs", "show", "abcdef01")

    assert ambiguous.returncode == 2
    assert ambiguous.stderr.startswith("error: run id prefix 'abcdef' is ambiguous")
    assert TWINS[1] in ambiguous.stderr
    assert unique.returncode == 0, unique.stderr
    assert "ids/first" in unique.stdout


def test_a_unique_prefix_names_a_flow_run(stores: Stores) -> None:
    @sy.flow
    def tiny() -> int:
        return 1

    base = new_run(tiny, {}, executor_name="local", trigger="manual")
    for run_id in TWINS:
        stores.flows.create_flow_run(dataclasses.replace(base, id=run_id, state="pending", start_time=None))
    client = sy.Client()

    assert client.get_flow_run("abcdef01").id == TWINS[0]
    with pytest.raises(InvalidInputError, match="ambiguous"):
        client.get_flow_run("abcdef")
    assert stores.flows.request_cancel("abcdef98", time.time()).state == "cancelled"
    cancelled = _shipyard("flows", "cancel", "abcdef01")
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled flow run {TWINS[0]}" in cancelled.stdout
