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


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INSTALL_DIRS = tuple({os.path.abspath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})


def _is_user_file(path: str) -> bool:
    """Code the user wrote: not shipyard's, not the interpreter's or an installed package's."""
    if not path or path.startswith("<") or not os.path.isabs(path):
        return False
    return not path.startswith((_PACKAGE_DIR + os.sep, *_INSTALL_DIRS)) and "site-packages" not in path


def _caller_files() -> list[str]:
    """The user's source files on the calling stack, innermost first."""
    files: list[str] = []
    frame = sys._getframe(1)
    while frame is not None:
        path = frame.f_code.co_filename
        if _is_user_file(path) and path not in files:
            files.append(path)
        frame = frame.f_back  # type: ignore[assignment]
    return files


def _argv_files() -> list[str]:
    """Source files named on the command line, as in ``shipyard run pipe.py:flow``."""
    files = []
    for arg in sys.argv[1:]:
        path = arg.partition(":")[0] if arg.partition(":")[0].endswith(".py") else arg
        if path.endswith(".py") and os.path.isfile(path):
            files.append(os.path.abspath(path))
    return files


def code_folders(source: str | None = None) -> list[str]:
    """Where to look for the run's repository, best first.

    The code's own files come first: an explicit ``source``, then the user's files on the
    calling stack, then files named on the command line. Then the working directory. The
    entry point's folder comes last: a console script (``shipyard``, ``pytest``) lives in a
    virtual environment that may be outside any repository.
    """
    files = [source] if source else []
    files += _caller_files() + _argv_files()
    folders = [os.path.dirname(os.path.abspath(f)) for f in files]
    folders.append(os.getcwd())
    entry = entry_point()
    if os.path.exists(entry):
        folders.append(os.path.dirname(os.path.abspath(entry)))
    return list(dict.fromkeys(folders))


def capture(source: str | None = None) -> dict[str, Any]:
    """The lineage of a run started now in this process, its code found from ``source`` or the caller."""
    info = dict(_static())
    info.update({"entry_point": entry_point(), "argv": list(sys.argv), "cwd": os.getcwd(), "pid": os.getpid()})
    for folder in code_folders(source):
        git = git_info(folder)
        if git:
            info["git"] = git
            break
    return info
