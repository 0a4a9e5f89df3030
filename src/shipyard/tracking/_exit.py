"""Ending runs when the process ends: flush and mark ``killed`` on SIGTERM, close at exit.

The set of live runs is process-wide on purpose: a signal handler and ``atexit`` have no
context to read the current run from.

Where the SIGTERM handler comes from. ``signal.signal`` works only on the main thread,
so the handler is installed by :func:`arm` the first time shipyard runs on the main
thread: ``import shipyard`` there (the usual case, even when every run then starts on a
worker thread), or a run started there. With no live run the handler passes SIGTERM on
to whatever handled it before (by default the process ends as if shipyard were absent).
A process whose main thread never touched shipyard has no handler: its runs are closed
at normal exit, and after a SIGTERM turn ``failed`` when their heartbeat lapses.

Why the handler cannot deadlock. Python runs it on the main thread between two
bytecodes, perhaps while that thread is inside a flush holding the buffer's write lock,
a pooled connection or SQLite's write lock. So the handler does not write itself: it hands
the closing to a ``shipyard-sigterm`` thread and waits for it a short while. When the
interrupted code holds nothing the closer needs (the common case), the closer is done
within that wait and the handler passes the signal on at once. Otherwise the handler puts
the previous disposition back and returns, the interrupted flush completes and frees its
locks, and the closer sends SIGTERM again once every run is closed, which by default ends
the process. A second SIGTERM sent while the closer works ends the process at once.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from types import FrameType, TracebackType
from typing import Any, Protocol


class ClosableRun(Protocol):
    """What closing needs of a run (an ``ActiveRun``)."""

    id: str
    depth: int

    def end(self, status: str = ...) -> None: ...


# How long the handler waits for the closer before letting the interrupted code go on.
HANDOFF_SECONDS = 1.0

_live: weakref.WeakKeyDictionary[ClosableRun, int] = weakref.WeakKeyDictionary()
_install_lock = threading.Lock()
_hooks_installed = False
_handler_installed = False
_previous_sigterm: Any = signal.SIG_DFL
_uncaught = False
_closer: threading.Thread | None = None
_closing = threading.Lock()
_closed = False
_handler_gave_up = False


def track(run: ClosableRun) -> None:
    """Remember ``run`` so it is closed properly if the process ends first."""
    arm()
    _live[run] = os.getpid()


def untrack(run: ClosableRun) -> None:
    """Forget an ended run."""
    _live.pop(run, None)


def arm() -> bool:
    """Install the exit hooks, and the SIGTERM handler when called on the main thread.

    Returns whether the SIGTERM handler is in place. Calling it again is cheap, so a run
    started on a worker thread before any main-thread call still gets the handler from the
    next main-thread call.
    """
    global _hooks_installed, _handler_installed, _previous_sigterm
    if _handler_installed:
        return True
    with _install_lock:
        if not _hooks_installed:
            atexit.register(_on_exit)
            _install_excepthook()
            _hooks_installed = True
        if not _handler_installed and threading.current_thread() is threading.main_thread():
            try:
                _previous_sigterm = signal.getsignal(signal.SIGTERM)
                signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:  # a sub-interpreter's "main" thread: nothing to install
                return False
            _handler_installed = True
        return _handler_installed


def _install_excepthook() -> None:
    previous_hook = sys.excepthook

    def _hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        global _uncaught
        _uncaught = True
        previous_hook(kind, value, tb)

    sys.excepthook = _hook


def _close_all(status: str) -> None:
    pid = os.getpid()
    # Runs inherited through fork belong to the parent; children first, so a parent never
    # ends before its nested runs.
    runs = [run for run, owner in list(_live.items()) if owner == pid]
    for run in sorted(runs, key=lambda r: -r.depth):
        try:
            run.end(status)
        except Exception as exc:
            print(f"shipyard: could not close run {run.id}: {exc}", file=sys.stderr)


def _close_then_resignal() -> None:
    global _closed
    _close_all("killed")
    with _closing:
        _closed = True
        resignal = _handler_gave_up
    if resignal and _previous_sigterm != signal.SIG_IGN:
        # The handler stopped waiting and put the previous disposition back: deliver again so
        # that it acts. By default the kernel ends the process, whatever the main thread is
        # doing; a Python handler runs on the main thread, hence the signal is sent there.
        main = threading.main_thread().ident
        if main is not None:
            signal.pthread_kill(main, signal.SIGTERM)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _closer, _handler_gave_up
    if _closer is None:
        _closer = threading.Thread(target=_close_then_resignal, name="shipyard-sigterm", daemon=False)
        _closer.start()
        _closer.join(HANDOFF_SECONDS)
    with _closing:
        if not _closed:
            # The interrupted code may hold a lock the closer needs: let it run and release
            # it. The closer signals again when done; the previous disposition handles that
            # delivery, as it would a second SIGTERM sent meanwhile (by default: the end).
            # Not this handler: a signal landing between two checks of the main thread and
            # its next sleep would wait for the end of that sleep.
            _handler_gave_up = True
            signal.signal(signal.SIGTERM, _previous_sigterm)
            return
    _pass_on(signum, frame)


def _pass_on(signum: int, frame: FrameType | None) -> None:
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
