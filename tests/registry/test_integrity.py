"""A model whose stored bytes changed is refused at load time, never run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.errors import IntegrityError


class Identity:
    """A pyfunc model."""

    def predict(self, data: Any) -> Any:
        return data


def _blob(settings: Settings, digest: str) -> Path:
    return Path(settings.artifact_uri.removeprefix("file://")) / "blobs" / digest[:2] / digest


def test_tampered_model_file_is_refused(settings: Settings, stores: Any) -> None:
    mv = reg.log_model(Identity(), "ident")
    refs = {r.path: r for r in stores.runs.list_artifacts(mv.run_id, mv.artifact_path)}
    blob = _blob(settings, refs["models/ident/model.pkl"].digest)
    assert blob.is_file()
    blob.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(IntegrityError, match=f"artifact blob {refs['models/ident/model.pkl'].digest} .* is corrupted"):
        reg.load_model("ident")


def test_tampered_manifest_is_refused(settings: Settings, stores: Any) -> None:
    mv = reg.log_model(Identity(), "ident")
    refs = {r.path: r for r in stores.runs.list_artifacts(mv.run_id, mv.artifact_path)}
    assert refs["models/ident/manifest.json"].digest == mv.manifest_digest
    _blob(settings, mv.manifest_digest).write_text('{"files": {}, "flavor": "pyfunc"}')
    with pytest.raises(IntegrityError, match="is corrupted"):
        reg.load_model("ident/1")
    with pytest.raises(IntegrityError, match="is corrupted"):
        reg.model_card("ident/1")


def test_manifest_lists_each_file_with_its_hash(settings: Settings, stores: Any) -> None:
    import json

    mv = reg.log_model(Identity(), "ident")
    loaded = reg.load_model(mv.ref)
    refs = {r.path: r.digest for r in stores.runs.list_artifacts(mv.run_id, mv.artifact_path)}
    assert loaded.manifest["files"]["model.pkl"]["sha256"] == refs["models/ident/model.pkl"]
    assert json.loads(stores.artifacts.get_bytes(mv.manifest_digest)) == loaded.manifest
    assert loaded.manifest["flavor"] == "pyfunc"
    assert loaded.manifest["python_version"].count(".") == 2
    assert "cloudpickle" in loaded.manifest["libraries"]
