"""A version's input example, kept in its package as ``input_example.parquet``.

``log_model`` stores the rows it was given, so later work on the version (an ONNX
conversion checking its outputs against the original's) has real input to compare on.
Parquet keeps each column's type, which a JSON example would lose.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.registry.signature import to_frame
from shipyard.store import Stores

if TYPE_CHECKING:
    import pandas as pd

EXAMPLE_FILE = "input_example.parquet"
logger = logging.getLogger("shipyard.registry")


def write_example(folder: Path, example: Any) -> None:
    """Write ``example`` (any accepted input shape) beside the model's files; nothing when ``None``.

    An example Parquet cannot hold (mixed objects in a column) is left out with a log line:
    the example is a convenience for later checks, never a reason to refuse a model.
    """
    if example is None:
        return
    try:
        to_frame(example).to_parquet(folder / EXAMPLE_FILE, index=False)
    except Exception as exc:  # pyarrow refuses some object columns; the model is still good
        (folder / EXAMPLE_FILE).unlink(missing_ok=True)
        logger.info("input example not stored (%s: %s)", type(exc).__name__, exc)


def read_example(stores: Stores, manifest: Mapping[str, Any]) -> pd.DataFrame | None:
    """The example stored in a version's package (verified against its sha256), ``None`` when it has none."""
    import pandas as pd

    info = manifest.get("files", {}).get(EXAMPLE_FILE)
    if info is None:
        return None
    return pd.read_parquet(io.BytesIO(stores.artifacts.get_bytes(str(info["sha256"]))))
