"""The README runs as written: every code block, in order, in an empty folder.

Python blocks run with this interpreter (a block whose first line is ``# NAME.py`` is saved as
that file, for the shell lines that use it). Shell lines run through bash with the installed
console script on ``PATH`` and must exit 0; ``make`` lines are left to ``make`` itself, and the
long-running ones (``shipyard serve``, ``shipyard scheduler`` without ``--once``) are started
here on loopback, used, and stopped within a bounded wait. A ``curl`` line followed by a
``# {...}`` comment must answer that JSON.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from shipyard.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
README_PORT = "8000"


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, text and first line in the README."""

    lang: str
    text: str
    line: int


@dataclass(frozen=True)
class Command:
    """One shell command (continuation lines joined) and the JSON its comment says it prints."""

    text: str
    line: int
    expected: object = None


def readme_blocks() -> list[Block]:
    text = README.read_text()
    return [Block(m[1], m[2], text.count("\n", 0, m.start()) + 2) for m in FENCE.finditer(text)]


def commands(block: Block) -> list[Command]:
    """The block's commands: a command goes on while a line ends in ``\\`` or a quote is open."""
    found: list[Command] = []
    pending, start = "", 0
    for number, line in enumerate(block.text.splitlines(), block.line):
        if not pending and line.lstrip().startswith("#"):
            if line.lstrip().startswith("# {") and found:  # the answer the previous command prints
                previous = found.pop()
                found.append(Command(previous.text, previous.line, json.loads(line.lstrip()[2:])))
            continue
        if not pending:
            start = number
        pending += line + "\n"
        if line.rstrip().endswith("\\") or not _complete(pending):
            continue
        if pending.strip():
            found.append(Command(pending.strip(), start))
        pending = ""
    assert not pending, f"README.md:{start}: unterminated command {pending!r}"
    return found


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def words(command: Command) -> list[str]:
    return shlex.split(command.text, comments=True)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with the embedded default store, and the console script on PATH."""
    for name in [k for k in os.environ if k.startswith("SHIPYARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_python(block: Block, folder: Path) -> None:
    first = block.text.splitlines()[0]
    named = re.fullmatch(r"# ([\w-]+\.py)", first.strip())
    if named:  # a file the shell lines run or import; saved, not run here
        (folder / named[1]).write_text(block.text)
        return
    script = folder / f"readme_line_{block.line}.py"
    script.write_text(block.text)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"README.md:{block.line}: the python block failed:\n{done.stderr[-3000:]}"


def run_shell(command: Command, port: int) -> str:
    text = command.text.replace(f"localhost:{README_PORT}", f"127.0.0.1:{port}")
    done = subprocess.run(["bash", "-c", text], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, (
        f"README.md:{command.line}: `{command.text}` exited {done.returncode}:\n"
        f"{done.stdout[-1500:]}{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr, f"README.md:{command.line}: {done.stderr[-3000:]}"
    if words(command)[0] == "curl":  # curl exits 0 on an HTTP error: the answer is what tells
        assert command.expected is not None, f"README.md:{command.line}: show the answer in a `# {{...}}` line"
        assert json.loads(done.stdout) == command.expected, f"README.md:{command.line}: answered {done.stdout!r}"
    return done.stdout


@contextmanager
def server(command: Command, port: int) -> Iterator[None]:
    """``shipyard serve ... &``: started on loopback, ready within 60 s, stopped with SIGTERM at the end."""
    argv = [a for a in words(command) if a != "&"]
    assert "--port" in argv, f"README.md:{command.line}: show the port the curl lines use (--port {README_PORT})"
    argv[argv.index("--port") + 1] = str(port)
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, f"README.md:{command.line}: the server exited: {_read(log)}"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"README.md:{command.line}: the server was not ready in 60 s"
                time.sleep(0.2)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output = _read(log)
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: -15 is a clean stop.
        assert process.returncode in (0, -signal.SIGTERM), f"README.md:{command.line}: ended {process.returncode}"
        assert "Traceback" not in output, f"README.md:{command.line}: the server printed:\n{output[-3000:]}"


def _read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()


def run_until_interrupted(command: Command) -> None:
    """A scheduler: started, left to register its flows, then stopped as Ctrl-C stops it."""
    process = subprocess.Popen(words(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, f"README.md:{command.line}: printed nothing in 60 s"
        first = process.stdout.readline()
        assert first.strip(), f"README.md:{command.line}: printed nothing before stopping"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # 0 once it stopped its loop; 130 (the CLI's code for an interrupt) when Ctrl-C came before it.
    assert process.returncode in (0, 130), f"README.md:{command.line}: exited {process.returncode}:\n{first}{output}"
    assert "Traceback" not in output, f"README.md:{command.line}: {output[-3000:]}"


def run_bash(block: Block) -> int:
    """Every command of a shell block; returns how many ran."""
    ran = 0
    port = free_port()
    with ExitStack() as servers:
        for command in commands(block):
            argv = words(command)
            if argv[0] == "make":  # the Makefile's own targets; make demo's script is tests/test_examples.py
                continue
            if argv[:2] == ["shipyard", "serve"]:
                servers.enter_context(server(command, port))
            elif argv[:2] == ["shipyard", "scheduler"] and "--once" not in argv:
                run_until_interrupted(command)
            else:
                assert argv[0] in {"shipyard", "python", "curl"}, f"README.md:{command.line}: no rule for {argv[0]!r}"
                run_shell(command, port)
            ran += 1
    return ran


@pytest.mark.slow
def test_every_readme_block_runs_as_written(folder: Path) -> None:
    blocks = readme_blocks()
    assert {b.lang for b in blocks} <= {"python", "bash"}, [b.lang for b in blocks]
    ran = 0
    for block in blocks:
        if block.lang == "python":
            run_python(block, folder)
            ran += 1
        else:
            ran += run_bash(block)
    assert ran >= 15  # the README's examples did run, not only the make lines
    assert (folder / ".shipyard" / "shipyard.db").exists()


def test_commands_join_continuations_and_read_answers() -> None:
    text = 'make demo   # a comment\n# a note\ncurl -s x \\\n  -d \'{"a":\n 1}\'\n# {"a": 1}\nshipyard gc\n'
    found = commands(Block("bash", text, 1))
    assert [c.line for c in found] == [1, 3, 7]
    assert found[1].text == "curl -s x \\\n  -d '{\"a\":\n 1}'"
    assert found[1].expected == {"a": 1}
    assert found[2].expected is None
