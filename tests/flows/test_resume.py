"""Resume: a failed or crashed run finishes by re-running only what did not succeed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import ConflictError
from shipyard.flows import flow, get_flow_run, resume, task
from tests.flows.conftest import by_key

CALLS: dict[str, int] = {}
BROKEN = {"right": True}


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


@task
def load(side: str) -> list[int]:
    _count(f"load-{side}")
    return [1, 2, 3]


@task
def transform(rows: list[int], side: str) -> int:
    _count(f"transform-{side}")
    if side == "right" and BROKEN["right"]:
        raise RuntimeError("right branch is broken")
    return sum(rows)


@task
def join(left: int, right: int) -> int:
    _count("join")
    return left + right


@flow
def two_branches() -> int:
    left = transform(load("left"), "left")
    right = transform(load("right"), "right")
    return join(left, right).result()


def test_resume_reruns_only_the_failed_branch(settings: Settings) -> None:
    CALLS.clear()
    BROKEN["right"] = True
    failed = two_branches.run()
    assert failed.state == "failed"
    assert by_key(failed)["transform-1"].state == "failed"
    assert by_key(failed)["join-0"].state == "skipped"

    BROKEN["right"] = False
    resumed = resume(failed.id)

    assert resumed.id == failed.id
    assert resumed.state == "succeeded"
    assert resumed.result == 12
    assert resumed.run_count == 2
    assert CALLS == {"load-left": 1, "load-right": 1, "transform-left": 1, "transform-right": 2, "join": 1}
    after = by_key(get_flow_run(failed.id))
    assert {k: t.state for k, t in after.items()} == {
        "load-0": "succeeded",
        "load-1": "succeeded",
        "transform-0": "succeeded",
        "transform-1": "succeeded",
        "join-0": "succeeded",
    }
    assert after["transform-0"].id == by_key(failed)["transform-0"].id  # the same records, kept


def test_only_unfinished_runs_can_be_resumed(settings: Settings) -> None:
    BROKEN["right"] = False
    done = two_branches.run()
    with pytest.raises(ConflictError, match="is succeeded; only failed, crashed or cancelled runs can be resumed"):
        resume(done.id)


CRASHY = """
import os
import time
from pathlib import Path

from shipyard.flows import flow, task

MARKS = Path(os.environ["CRASH_MARKS"])


@task
def prepare() -> int:
    with (MARKS / "prepare.calls").open("a") as handle:
        handle.write("x")
    return 21


@task
def slow(x: int) -> int:
    (MARKS / "slow.started").write_text(str(os.getpid()))
    while (MARKS / "hang").exists():
        time.sleep(0.05)
    return x * 2


@flow
def crashy() -> int:
    return slow(prepare()).result()


if __name__ == "__main__":
    crashy()
"""


def test_a_killed_flow_process_is_marked_crashed_and_resume_completes_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "crashy.py"
    script.write_text(CRASHY)
    marks = tmp_path / "marks"
    marks.mkdir()
    (marks / "hang").touch()
    monkeypatch.setenv("CRASH_MARKS", str(marks))
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        run_id = _wait_for_recorded_progress(marks)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()

    crashed = _wait_for_state(run_id, "crashed")
    assert by_key(crashed)["prepare-0"].state == "succeeded"
    assert by_key(crashed)["slow-0"].state == "crashed"
    assert "stopped beating" in (crashed.error or "")

    (marks / "hang").unlink()
    resumed = resume(run_id)  # imports the flow from the script it recorded

    assert resumed.state == "succeeded"
    assert resumed.result == 42
    assert (marks / "prepare.calls").read_text() == "x"  # prepare was not run again
    assert by_key(resumed)["slow-0"].state == "succeeded"


def _wait_for_recorded_progress(marks: Path) -> str:
    from shipyard.flows import list_flow_runs

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (marks / "slow.started").exists():
            runs = list_flow_runs("crashy")
            if runs:
                run = get_flow_run(runs[0].id)
                if by_key(run).get("prepare-0") and by_key(run)["prepare-0"].state == "succeeded":
                    return run.id
        time.sleep(0.05)
    raise AssertionError("the flow in the subprocess never got to its second task")


def _wait_for_state(run_id: str, state: str) -> object:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = get_flow_run(run_id)
        if run.state == state:
            return run
        time.sleep(0.1)
    raise AssertionError(f"flow run {run_id} never became {state}; it is {run.state}")
