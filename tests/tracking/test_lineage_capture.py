"""A run's git commit comes from the code it runs and the working directory, wherever Python lives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.config import Settings

TRAIN = textwrap.dedent(
    """
    import shipyard as sy

    def main():
        with sy.start_run(experiment="lineage", name="train") as run:
            sy.log_metric("auc", 0.9)
        print(run.id)
    """
)

# Stands for a console script (``shipyard``, ``pytest``) in a virtual environment that lives
# outside the repository: the process's entry point knows nothing of the user's code.
CONSOLE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import train
    train.main()
    """
)


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    _git(folder, "init", "-q")
    _git(folder, "add", "train.py")
    _git(folder, "commit", "-q", "-m", "train")
    return folder, _git(folder, "rev-parse", "HEAD")


def _run(settings: Settings, script: Path, *args: str, cwd: Path) -> str:
    env = {**os.environ, "SHIPYARD_STORE": settings.store_uri, "SHIPYARD_ARTIFACTS": settings.artifact_uri}
    out = subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_the_commit_comes_from_the_users_source_file_not_the_entry_point(
    settings: Settings, repo: tuple[Path, str], tmp_path: Path
) -> None:
    folder, commit = repo
    outside = tmp_path / "venv" / "bin"  # neither it nor the working directory is in a repository
    outside.mkdir(parents=True)
    (outside / "tool.py").write_text(CONSOLE_SCRIPT)

    run_id = _run(settings, outside / "tool.py", str(folder), cwd=outside)

    git = sy.Client(settings=settings).get_run(run_id).lineage["git"]
    assert git["commit"] == commit
    assert git["dirty"] is False


def test_the_commit_comes_from_the_working_directory_when_no_user_file_is_on_the_stack(
    settings: Settings, repo: tuple[Path, str], tmp_path: Path
) -> None:
    folder, commit = repo
    outside = tmp_path / "tools"
    outside.mkdir()
    # The entry point starts the run itself from outside the repository, as `shipyard run` does.
    (outside / "cli.py").write_text(
        "import shipyard as sy\nwith sy.start_run(experiment='lineage') as run:\n    pass\nprint(run.id)\n"
    )
    (folder / "train.py").write_text(TRAIN + "\n# edited\n")

    run_id = _run(settings, outside / "cli.py", cwd=folder)

    git = sy.Client(settings=settings).get_run(run_id).lineage["git"]
    assert git["commit"] == commit
    assert git["dirty"] is True
