"""Team mode's artifact side: runs, datasets and models with artifacts on S3 (moto's server)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import IntegrityError
from shipyard.testing import S3Server


@pytest.mark.s3
def test_track_register_and_load_with_artifacts_on_s3(
    settings: Settings, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = replace(
        settings, artifact_uri=f"s3://{s3_server.bucket}/{id(settings)}", s3_endpoint_url=s3_server.endpoint_url
    )
    client = sy.Client(settings=s3)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    labels = (frame["a"] > 0).astype(int)
    model = DecisionTreeClassifier(max_depth=2).fit(frame, labels)
    with sy.start_run(experiment="s3", client=client) as run:
        sy.log_metric("acc", 1.0)
        run.log_text("hello from s3", "notes/hello.txt")
        sy.log_dataset(frame, "s3-train", client=client)
        version = sy.log_model(model, "s3-model", input_example=frame.head(3), client=client)
    loaded = sy.load_model(f"s3-model/{version.version}", client=client)
    assert list(loaded.predict(frame.head(5))) == list(model.predict(frame.head(5)))
    assert sy.load_dataset("s3-train", client=client).to_pandas()["a"].tolist() == frame["a"].tolist()
    notes = next(a for a in client.list_artifacts(run.id) if a.path == "notes/hello.txt")
    assert client.stores.artifacts.get_bytes(notes.digest) == b"hello from s3"
    assert client.stores.artifacts.root.startswith("s3://")
    # Tamper with the object in the bucket: the load must refuse it.
    with client.stores.artifacts.fs.open(client.stores.artifacts._path(notes.digest), "wb") as handle:  # type: ignore[attr-defined]
        handle.write(b"tampered")
    with pytest.raises(IntegrityError):
        client.stores.artifacts.get_bytes(notes.digest)
