"""Lineage answers "which data and code made this model"; gc removes only what nothing references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import ConflictError, NotFoundError


def _train(name: str, data: pd.DataFrame) -> tuple[str, int]:
    from sklearn.linear_model import LogisticRegression

    with sy.start_run(experiment="churn", name=name) as run:
        sy.log_dataset(data, "churn-train")
        model = LogisticRegression().fit(data[["a", "b"]], data["y"])
        sy.log_metric("auc", 0.9)
        version = sy.log_model(model, "churn", input_example=data[["a", "b"]].head(3), owner="ana", team="growth")
        sy.log_dataset(data.head(10), "churn-scored", role="output")
    return run.id, version.version


def _data(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    frame["y"] = (frame["a"] > 0).astype(int)
    return frame


def test_lineage_from_alias_reaches_data_code_and_owner(settings: Settings) -> None:
    run_id, version = _train("lr", _data(0))
    sy.set_alias("churn", "champion", version)
    graph = sy.Client().lineage("churn@champion")
    assert graph.root == f"model:churn/{version}"
    root = graph.node(graph.root)
    assert (root.attrs["owner"], root.attrs["team"], root.attrs["aliases"]) == ("ana", "growth", ["champion"])
    edges = {(e.source, e.relation, e.target) for e in graph.edges}
    assert (f"run:{run_id}", "produced", graph.root) in edges
    assert ("dataset:churn-train@1", "input_to", f"run:{run_id}") in edges
    assert (f"run:{run_id}", "produced", "dataset:churn-scored@1") in edges
    code = graph.of_kind("code")
    assert len(code) == 1
    assert len(code[0].attrs["git"]["commit"]) == 40
    assert (code[0].id, "executed_by", f"run:{run_id}") in edges


def test_lineage_from_a_dataset_finds_the_models_it_fed(settings: Settings) -> None:
    run_id, version = _train("lr", _data(1))
    graph = sy.Client().lineage("dataset:churn-train@1")
    assert {n.id for n in graph.of_kind("model_version")} == {f"model:churn/{version}"}
    assert f"run:{run_id}" in {n.id for n in graph.of_kind("run")}


def test_lineage_of_unknown_things_is_not_found(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="model 'ghost' does not exist"):
        sy.Client().lineage("ghost@champion")
    _train("lr", _data(2))
    with pytest.raises(NotFoundError, match="model 'churn' has no alias 'champion'"):
        sy.Client().lineage("churn@champion")


def test_gc_purges_deleted_runs_and_their_unreferenced_blobs(settings: Settings, tmp_path: Path) -> None:
    client = sy.Client()
    keep_file, drop_file = tmp_path / "keep.txt", tmp_path / "drop.txt"
    keep_file.write_text("kept")
    drop_file.write_text("dropped")
    with sy.start_run(experiment="gc") as keep:
        kept_ref = sy.log_artifact(keep_file)
    with sy.start_run(experiment="gc") as drop:
        dropped_ref = sy.log_artifact(drop_file)
    _train("lr", _data(3))
    before = set(client.stores.artifacts.list_digests())
    assert {kept_ref.digest, dropped_ref.digest} <= before
    client.delete_run(drop.id)
    report = client.gc()
    assert report["runs"] == 1
    assert report["blobs_deleted"] == 1
    after = set(client.stores.artifacts.list_digests())
    assert after == before - {dropped_ref.digest}
    assert client.get_run(keep.id).status == "finished"
    assert sy.load_model("churn").predict(_data(3)[["a", "b"]].head(2)) is not None  # model files survived
    assert sy.load_dataset("churn-train").to_pandas().shape == (50, 3)


def test_gc_dry_run_reports_exactly_what_gc_then_deletes(settings: Settings, tmp_path: Path) -> None:
    client = sy.Client()
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(f"file {i}")
        with sy.start_run(experiment="gc") as run:
            sy.log_artifact(tmp_path / f"{i}.txt")
        if i:
            client.delete_run(run.id)
    (tmp_path / "shared.txt").write_text("shared")
    with sy.start_run(experiment="gc") as kept:
        sy.log_artifact(tmp_path / "shared.txt")
    with sy.start_run(experiment="gc") as dropped:  # the same blob as the kept run's
        sy.log_artifact(tmp_path / "shared.txt")
    client.delete_run(dropped.id)
    before = set(client.stores.artifacts.list_digests())

    planned = client.gc(dry_run=True)
    assert set(client.stores.artifacts.list_digests()) == before, "a dry run deletes nothing"
    done = client.gc()

    assert planned == done
    assert (done["runs"], done["blobs_deleted"]) == (3, 2)
    shared = next(a for a in client.list_artifacts(kept.id) if a.path == "shared.txt")
    assert shared.digest in client.stores.artifacts.list_digests()
    assert len(before - set(client.stores.artifacts.list_digests())) == done["blobs_deleted"]
    assert client.gc(dry_run=True) == {**done, "runs": 0, "model_versions": 0, "orphan_blobs": 0, "blobs_deleted": 0}


def test_deleting_a_run_that_produced_a_model_version_needs_force(settings: Settings) -> None:
    client = sy.Client()
    run_id, version = _train("lr", _data(5))

    with pytest.raises(ConflictError, match=f"produced registered model versions churn/{version}"):
        client.delete_run(run_id)
    assert client.get_run(run_id).status == "finished"

    client.delete_run(run_id[:8], force=True)
    with pytest.raises(NotFoundError):
        client.get_run(run_id)
    graph = client.lineage(f"churn/{version}")
    run = graph.node(f"run:{run_id}")
    assert run.attrs == {"deleted": True}
    assert "(deleted)" in run.label
    assert (f"run:{run_id}", "produced", f"model:churn/{version}") in {
        (e.source, e.relation, e.target) for e in graph.edges
    }
    # The version's files are the run's artifacts: gc keeps them while the version lives.
    assert client.gc()["runs"] == 0
    assert sy.load_model(f"churn/{version}").predict(_data(5)[["a", "b"]].head(2)) is not None


def test_lineage_of_a_version_shows_where_it_was_served(settings: Settings) -> None:
    from shipyard.serving.prediction_log import open_deployment_run
    from shipyard.store import open_stores

    _, first = _train("lr", _data(2))
    _, second = _train("lr2", _data(3))
    stores = open_stores(settings)
    for arm, ref, version in [
        ("primary", "churn@champion", first),
        ("primary", "churn@champion", first),  # served again after a restart: the same deployment
        ("canary", "churn@challenger", first),
        ("primary", "churn@champion", second),
    ]:
        open_deployment_run(stores, ref=ref, model="churn", arm=arm, version=version)
    graph = sy.Client().lineage(f"churn/{first}")
    deployments = {n.id: n.attrs["starts"] for n in graph.of_kind("deployment")}
    assert deployments == {"deployment:churn@champion:primary": 2, "deployment:churn@challenger:canary": 1}
    edges = {(e.source, e.relation, e.target) for e in graph.edges}
    assert (graph.root, "deployed_as", "deployment:churn@champion:primary") in edges
    later = sy.Client().lineage(f"churn/{second}")
    assert [n.id for n in later.of_kind("deployment")] == ["deployment:churn@champion:primary"]
