"""Datasets whose bytes live on S3 (moto's server on loopback), through an explicit client."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.datasets import list_datasets, load_dataset, log_dataset
from shipyard.store import Stores, close_stores, open_stores
from shipyard.testing import S3Server


@dataclass(frozen=True)
class StoresClient:
    stores: Stores


@pytest.mark.s3
def test_log_and_load_with_artifacts_on_s3(
    settings: Settings, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    on_s3 = replace(settings, artifact_uri=f"s3://{s3_server.bucket}/ds", s3_endpoint_url=s3_server.endpoint_url)
    client = StoresClient(open_stores(on_s3))
    try:
        df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None]})
        v = log_dataset(df, "remote", client=client)
        assert log_dataset(df, "remote", client=client).version == v.version == 1
        assert client.stores.artifacts.exists(v.artifact_digest)
        pd.testing.assert_frame_equal(load_dataset("remote@1", client=client).to_pandas(), df)
        assert [d.name for d in list_datasets(client=client)] == ["remote"]
    finally:
        close_stores(on_s3)
