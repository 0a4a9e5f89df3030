"""What ``load_dataset`` hands back: a version and its verified data, convertible to any frame library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from shipyard.store.entities import DatasetVersion

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class LoadedDataset:
    """A dataset version with its data, read from the artifact store and verified by hash.

    Example:
        >>> ds = load_dataset("churn-train@2")  # doctest: +SKIP
        >>> ds.version.num_rows, ds.to_pandas().shape  # doctest: +SKIP
    """

    version: DatasetVersion
    table: pa.Table = field(repr=False)

    @property
    def ref(self) -> str:
        """``name@version`` of the loaded data."""
        return self.version.ref

    def to_arrow(self) -> pa.Table:
        """The data as a pyarrow Table."""
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        """The data as a pandas DataFrame (a logged pandas index is restored)."""
        frame: pd.DataFrame = self.table.to_pandas()
        return frame

    def to_polars(self) -> pl.DataFrame:
        """The data as a polars DataFrame.

        Raises:
            ImportError: polars is not installed.
        """
        try:
            import polars
        except ImportError as exc:
            raise ImportError("to_polars() needs polars: pip install 'shipyard[ml]'") from exc
        return cast("pl.DataFrame", polars.from_arrow(self.table))
