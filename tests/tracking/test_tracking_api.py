"""The module-level tracking API, as a user calls it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError


def test_run_records_params_metrics_tags_and_lineage(settings: Settings) -> None:
    with sy.start_run(experiment="churn", name="lgbm", tags={"team": "growth"}) as run:
        sy.log_params({"lr": 0.1, "depth": 6})
        sy.log_param("model", "lgbm")
        for step in range(5):
            sy.log_metric("loss", 1.0 / (step + 1), step=step)
        sy.log_metrics({"auc": 0.91, "f1": math.nan}, step=4)
        sy.set_tag("stage", "dev")
    client = sy.Client()
    got = client.get_run(run.id)
    assert got.status == "finished"
    assert got.experiment == "churn"
    assert got.name == "lgbm"
    assert got.params == {"lr": "0.1", "depth": "6", "model": "lgbm"}
    assert got.metrics["auc"] == 0.91
    assert math.isnan(got.metrics["f1"])
    assert got.tags == {"team": "growth", "stage": "dev"}
    assert got.end_time is not None
    assert got.duration is not None
    assert got.duration >= 0
    assert [(p.step, p.value) for p in client.get_metric_history(run.id, "loss")] == [
        (s, 1.0 / (s + 1)) for s in range(5)
    ]
    lineage = got.lineage
    assert all(lineage[key] for key in ("entry_point", "python", "user", "host"))
    assert len(lineage["git"]["commit"]) == 40  # found from this test file, wherever the venv lives
    assert isinstance(lineage["git"]["dirty"], bool)
    requirements = [a for a in client.list_artifacts(run.id) if a.path == "environment/requirements.txt"]
    assert requirements, "installed packages are recorded as an artifact"
    text = client.stores.artifacts.get_bytes(requirements[0].digest).decode()
    assert "SQLAlchemy==" in text or "sqlalchemy==" in text.lower()


def test_exception_marks_run_failed_and_keeps_what_was_logged(settings: Settings) -> None:
    def train() -> str:
        with sy.start_run(experiment="x") as run:
            sy.log_metric("before", 1.0)
            raise RuntimeError(f"training diverged in {run.id}")

    with pytest.raises(RuntimeError, match="training diverged in ") as info:
        train()
    run_id = str(info.value).rsplit(" ", 1)[1]
    got = sy.Client().get_run(run_id)
    assert got.status == "failed"
    assert got.metrics == {"before": 1.0}


def test_nested_runs_know_their_parent(settings: Settings) -> None:
    with sy.start_run(experiment="tune", name="search") as parent:
        with sy.start_run(name="trial-1") as child:
            sy.log_metric("auc", 0.8)
        assert sy.active_run() is parent
    client = sy.Client()
    got = client.get_run(child.id)
    assert got.parent_run_id == parent.id
    assert got.experiment == "tune"
    assert client.get_run(parent.id).metrics == {}
    assert sy.active_run() is None


def test_bad_input_is_named_and_nothing_is_written(settings: Settings) -> None:
    with sy.start_run(experiment="bad") as run:
        with pytest.raises(InvalidInputError, match=r"metric 'auc' must be a number, got 'high' \(str\)"):
            sy.log_metric("auc", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="metric 'ok2' must be a number, got None"):
            sy.log_metrics({"ok": 1.0, "ok2": None})  # type: ignore[dict-item]
        with pytest.raises(InvalidInputError, match="step of metric 'x' must be an integer"):
            sy.log_metric("x", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="metric name must be a non-empty string"):
            sy.log_metric("", 1.0)
        with pytest.raises(InvalidInputError, match="is not a file"):
            sy.log_artifact("no/such/file.png")
    client = sy.Client()
    assert client.get_run(run.id).metrics == {}
    with pytest.raises(NotFoundError, match="experiment 'nope' does not exist"):
        client.search_runs("nope")
    with pytest.raises(ConflictError, match="no active run"):
        sy.log_metric("x", 1.0)
    with pytest.raises(ConflictError, match="has ended"):
        run.log_metric("late", 1.0)


def test_artifacts_files_and_folders_round_trip(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "plots" / "sub").mkdir(parents=True)
    (tmp_path / "plots" / "roc.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "plots" / "sub" / "pr.png").write_bytes(b"\x89PNG other")
    (tmp_path / "notes.txt").write_text("hello")
    with sy.start_run(experiment="art") as run:
        sy.log_artifact(tmp_path / "notes.txt")
        sy.log_artifacts(tmp_path / "plots", artifact_path="figures")
    client = sy.Client()
    assert [a.path for a in client.list_artifacts(run.id) if not a.path.startswith("environment/")] == [
        "figures/roc.png",
        "figures/sub/pr.png",
        "notes.txt",
    ]
    out = client.download_artifact(run.id, "figures/sub/pr.png", tmp_path / "dl" / "pr.png")
    assert out.read_bytes() == b"\x89PNG other"
    with pytest.raises(NotFoundError, match=r"has no artifact 'figures/nope\.png'"):
        client.download_artifact(run.id, "figures/nope.png", tmp_path / "x")


def test_buffered_metrics_are_visible_after_flush_and_synchronous_ones_at_once(settings: Settings) -> None:
    client = sy.Client()
    with sy.start_run(experiment="buf") as run:
        sy.log_metric("sync", 1.0, synchronous=True)
        assert client.get_run(run.id).metrics == {"sync": 1.0}
        sy.log_metric("buffered", 2.0)
        sy.flush()
        assert client.get_run(run.id).metrics == {"sync": 1.0, "buffered": 2.0}


def test_system_metrics_are_sampled_by_the_heartbeat_when_asked(settings: Settings) -> None:
    import time

    with sy.start_run(experiment="sys", log_system_metrics=True) as run:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sy.flush()
            if "system/cpu_percent" in sy.Client().get_run(run.id).metrics:
                break
            time.sleep(0.1)
    metrics = sy.Client().get_run(run.id).metrics
    assert 0 <= metrics["system/memory_percent"] <= 100
    assert "system/cpu_percent" in metrics
