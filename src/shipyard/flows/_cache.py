"""Cache keys: the hash of a task's source code and of its inputs.

Changing the function's code (its source, or its bytecode and constants when the source
cannot be read) changes the key, so a cached output is never reused for new code.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.store.entities import ValueRef


def source_hash(fn: Callable[..., Any]) -> str:
    """sha256 of the function's source (dedented), or of its code object when there is no source."""
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr((code.co_code, code.co_consts, code.co_names)) if code is not None else repr(fn)
    return hashlib.sha256(text.encode()).hexdigest()


def input_hash(inputs: Mapping[str, ValueRef | None], unhashable: Mapping[str, str]) -> str:
    """sha256 over each argument's name and value digest (or type, for values that cannot be stored)."""
    parts = {
        name: (ref.digest if ref is not None else f"unstored:{unhashable.get(name, '?')}")
        for name, ref in inputs.items()
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_key(source: str, inputs_digest: str) -> str:
    """The key a cached output is found by: code and inputs together."""
    return hashlib.sha256(f"{source}:{inputs_digest}".encode()).hexdigest()
