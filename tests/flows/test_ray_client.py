"""The Ray executor against a ``ray://`` address: a separate Ray head with its client server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.flows import Resources, flow, task
from shipyard.testing import free_port, in_ci, port_open, sqlite_settings

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    # Ray's own retry notice while its client port is slow to answer; the test asserts the run.
    pytest.mark.filterwarnings("ignore:Ray Client connection timed out:UserWarning"),
]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    try:
        import grpc  # noqa: F401 - Ray Client needs it
        import ray  # noqa: F401
    except ImportError as exc:
        if in_ci():
            pytest.fail(f"{exc.name} is not installed (CI=true: install shipyard[ray])")
        pytest.skip(f"{exc.name} is not installed: pip install 'shipyard[ray]'")
    ray_cli = Path(sys.executable).with_name("ray")
    client_port, gcs_port = free_port(), free_port()
    # Its own temp dir: the head leaves a cluster file behind that a later ray.init() would follow.
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    # On 2 loaded cores the per-client server Ray spawns can miss its 30 s channel check.
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120",
    }
    # --block keeps `ray start` in the foreground: terminating it stops the processes it started.
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={gcs_port}", f"--ray-client-server-port={client_port}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not port_open("127.0.0.1", client_port):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Ray head did not start its client server")
            time.sleep(0.5)
        os.environ["RAY_AUTH_MODE"] = "disabled"
        yield f"ray://127.0.0.1:{client_port}"
    finally:
        os.environ.pop("RAY_AUTH_MODE", None)
        head.terminate()
        head.wait(60)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _connect(address: str) -> Any:
    """A RayExecutor on ``address``, retried: Ray's per-client server can fail to start on a busy machine."""
    from shipyard.flows import RayExecutor

    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                # Ray warns, then retries, while its client port is slow to answer.
                warnings.simplefilter("ignore")
                return RayExecutor(address)
        except ConnectionError:  # ConnectionAbortedError: "Starting Ray client server failed"
            if attempt == 4:
                raise
            time.sleep(3)
    raise AssertionError("unreachable")


@task(resources=Resources(cpus=1, memory="20MB"))
def cube(x: int) -> int:
    return x**3


@flow
def cubes(n: int = 3) -> int:
    return sum(cube.map(list(range(n))).result())


def test_a_flow_runs_on_a_ray_cluster_by_address(ray_address: str, tmp_path: Path) -> None:
    # One store is enough: this tests the executor; the store contract runs elsewhere on both engines.
    settings = sqlite_settings(tmp_path)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHIPYARD_STORE", settings.store_uri)
        env.setenv("SHIPYARD_ARTIFACTS", settings.artifact_uri)
        env.chdir(tmp_path)
        _check_cubes(ray_address)


def _check_cubes(ray_address: str) -> None:
    executor = _connect(ray_address)
    try:
        run = cubes.with_options(executor=executor).run(n=4)
    finally:
        executor.close()

    assert run.state == "succeeded"
    assert run.result == 36
    assert {t.kind for t in run.tasks} == {"ray"}
