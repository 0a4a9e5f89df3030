"""What a task needs from the machine: CPUs, memory and GPUs, with sizes parsed from strings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidInputError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
    "ti": 2**40,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_memory(value: int | float | str | None, *, field: str = "memory") -> int:
    """Bytes from ``4GB``, ``512MB``, ``1.5GiB`` or a number of bytes; ``None`` is 0.

    Decimal units (KB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, GiB, TiB)
    powers of 1024, as in Kubernetes and Ray.

    Example:
        >>> parse_memory("512MB")
        512000000
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidInputError(f"{field} must be a size such as '512MB' or '4GB', got {value!r}", field=field)
    if isinstance(value, int | float):
        if value < 0:
            raise InvalidInputError(f"{field} must not be negative, got {value!r}", field=field)
        return int(value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise InvalidInputError(
            f"{field} {value!r} is not a size; use bytes or a number with a unit: "
            "'512MB', '4GB', '1.5GiB' (KB, MB, GB, TB or KiB, MiB, GiB, TiB)",
            field=field,
        )
    return int(float(match.group(1)) * _UNITS[str(unit)])


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task attempt needs: the local executor admits it only when all of it is free.

    ``cpus`` may be fractional (``0`` for a task that mostly waits on I/O); ``memory`` is bytes
    or a string such as ``"4GB"``.

    Example:
        >>> Resources(cpus=2, memory="4GB").memory_bytes
        4000000000
    """

    cpus: float = 1.0
    memory: int | str = 0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cpus", "gpus"):
            amount = getattr(self, name)
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
                raise InvalidInputError(f"resources {name} must be a number >= 0, got {amount!r}", field=name)
        parse_memory(self.memory)

    @property
    def memory_bytes(self) -> int:
        """``memory`` in bytes."""
        return parse_memory(self.memory)

    def as_dict(self) -> dict[str, float]:
        """``{"cpus": ..., "memory": bytes, "gpus": ...}``, as recorded on each task run."""
        return {"cpus": float(self.cpus), "memory": float(self.memory_bytes), "gpus": float(self.gpus)}
