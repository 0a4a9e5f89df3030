"""What every run records about where it came from: code, machine, interpreter, packages.

Captured once per process (a process runs one checkout and one environment), so creating
a run costs no subprocess.
"""

from __future__ import annotations

import functools
import getpass
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def entry_point() -> str:
    """The script or module the process started from."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>")
    return str(path)


@functools.cache
def git_info(folder: str) -> dict[str, Any]:
    """Commit, branch, dirty flag and remote of the repository holding ``folder``, if any."""
    cwd = Path(folder)
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {
        "commit": commit,
        "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd),
        "dirty": bool(status),
        "remote": _git(["config", "--get", "remote.origin.url"], cwd),
    }


@functools.cache
def requirements_text() -> str:
    """Installed distributions as ``name==version`` lines, sorted: the run's environment."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            lines.add(f"{name}=={dist.version}")
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


@functools.cache
def _static() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {
        "user": user,
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def capture() -> dict[str, Any]:
    """The lineage of a run started now in this process."""
    entry = entry_point()
    folder = os.path.dirname(os.path.abspath(entry)) if os.path.exists(entry) else os.getcwd()
    info = dict(_static())
    info.update({"entry_point": entry, "argv": list(sys.argv), "cwd": os.getcwd(), "pid": os.getpid()})
    git = git_info(folder)
    if git:
        info["git"] = git
    return info
