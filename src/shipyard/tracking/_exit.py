"""Ending runs when the process ends: flush and mark ``killed`` on SIGTERM, close at exit.

The set of live runs is process-wide on purpose: a signal handler and ``atexit`` have no
context to read the current run from.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.tracking.api import ActiveRun

_live: weakref.WeakSet[ActiveRun] = weakref.WeakSet()
_installed = False
_install_lock = threading.Lock()
_previous_sigterm: Any = signal.SIG_DFL
_uncaught = False


def track(run: ActiveRun) -> None:
    """Remember ``run`` so it is closed properly if the process ends first."""
    _install()
    _live.add(run)


def untrack(run: ActiveRun) -> None:
    """Forget an ended run."""
    _live.discard(run)


def _close_all(status: str) -> None:
    # Children first, so a parent never ends before its nested runs.
    for run in sorted(list(_live), key=lambda r: -r.depth):
        try:
            run.end(status)
        except Exception as exc:
            print(f"shipyard: could not close run {run.id}: {exc}", file=sys.stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _close_all("killed")
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _on_exit() -> None:
    _close_all("failed" if _uncaught else "finished")


def _install() -> None:
    global _installed, _previous_sigterm
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        atexit.register(_on_exit)
        if threading.current_thread() is threading.main_thread():
            _previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
        previous_hook = sys.excepthook

        def _hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
            global _uncaught
            _uncaught = True
            previous_hook(kind, value, tb)

        sys.excepthook = _hook
        _installed = True
