"""The walk-route example: batch, online and streaming give the same top 10 for the same user and context."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.store import close_stores
from shipyard.testing import free_port, in_ci, sqlite_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "walk_routes"
sys.path.insert(0, str(EXAMPLE))

import walk_deploy  # noqa: E402
import walk_routes  # noqa: E402

Top10 = dict[str, list[int]]


@dataclass(frozen=True)
class Deployed:
    """The registered ranker, the contexts asked about, and the batch job's answers."""

    ref: str
    contexts: pd.DataFrame
    batch: Top10
    database: Path
    folder: Path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The example's model registered in a fresh store (exported as a user's shell would), scored in batch."""
    folder = tmp_path_factory.mktemp("walk")
    settings = sqlite_settings(folder, flush_interval=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPYARD_STORE", settings.store_uri)
        patch.setenv("SHIPYARD_ARTIFACTS", settings.artifact_uri)
        patch.chdir(folder)
        city = walk_routes.routes.make_city()
        ref = walk_routes.register(city)
        contexts = walk_routes.contexts(city)
        batch, database = walk_deploy.batch_top10(ref, contexts, folder)
        yield Deployed(ref, contexts, batch, database, folder)
    close_stores(settings)


def test_batch_precomputes_every_context_for_lookup(deployed: Deployed) -> None:
    import shipyard as sy

    assert sorted(deployed.batch) == sorted(deployed.contexts["context_id"])
    ranker = sy.load_model(deployed.ref)
    columns = list(walk_routes.routes.CONTEXT)
    in_process = ranker.predict(deployed.contexts[columns]).to_numpy()
    for context_id, expected in zip(deployed.contexts["context_id"], in_process, strict=True):
        assert deployed.batch[context_id] == expected.tolist()
        assert len(set(expected)) == 10  # ten distinct routes
    assert walk_deploy.lookup(deployed.database, "u7-rain-18h") == deployed.batch["u7-rain-18h"]
    with pytest.raises(KeyError, match="u999"):
        walk_deploy.lookup(deployed.database, "u999-sunny-8h")
    # the context matters: rain in the evening reorders some users' routes
    changed = [
        u
        for u in range(walk_routes.routes.USERS)
        if deployed.batch[f"u{u}-sunny-8h"] != deployed.batch[f"u{u}-rain-18h"]
    ]
    assert changed


def test_online_serving_gives_the_batch_top10(deployed: Deployed) -> None:
    with walk_deploy.Server(deployed.ref, free_port(), deployed.folder / "serve.log") as server:
        online = walk_deploy.online_top10(server.url, walk_routes.MODEL, deployed.contexts)
    assert online == deployed.batch


def _redis_or_skip() -> None:
    if walk_routes.redis_answers():
        return
    if in_ci():
        pytest.fail("Redis on 127.0.0.1:6379 does not answer (CI=true: integration services must be present)")
    pytest.skip("Redis on 127.0.0.1:6379 does not answer")


@pytest.mark.redis
def test_streaming_location_updates_give_the_batch_top10(deployed: Deployed) -> None:
    _redis_or_skip()
    streamed = walk_deploy.stream_top10(deployed.ref, deployed.contexts)
    assert streamed == deployed.batch


def test_an_unknown_user_gets_the_average_users_routes(deployed: Deployed) -> None:
    import shipyard as sy

    ranker = sy.load_model(deployed.ref)
    row: dict[str, Any] = deployed.contexts.iloc[0][list(walk_routes.routes.CONTEXT)].to_dict()
    stranger = ranker.predict(pd.DataFrame([{**row, "user_id": 10_000}])).to_numpy()[0]
    assert len(set(stranger.tolist())) == 10
    assert np.all((stranger >= 0) & (stranger < walk_routes.routes.ROUTES))
