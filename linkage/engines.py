"""The engines a linkage run can use: DuckDB in-process (default) and Spark (local or cluster).

An engine registers the input tables with Splink and fetches results back as Arrow. Everything
else (the model, blocking rules, training, thresholds, clustering) is the same code for both:
Splink generates each engine's SQL, and our comparison levels write their own per dialect.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
from splink import DuckDBAPI

RESULT_COLUMNS = (
    "source_dataset_l as dataset_l, unique_id_l as record_l, "
    "source_dataset_r as dataset_r, unique_id_r as record_r, match_weight, match_probability"
)


class Engine(Protocol):
    """What ``link()`` needs from an engine."""

    name: str

    def register(self, tables: Sequence[pa.Table], names: Sequence[str]) -> list[Any]: ...

    def scored_pairs(self, predictions: Any, floor: float) -> tuple[dict[int, int], pa.Table]:
        """Pairs compared per blocking rule (Splink's ``match_key``: the first rule that found
        the pair), and the pairs scored at or above ``floor``."""
        ...

    def close(self) -> None: ...


#: DuckDB's memory limit unless configured: with it, a run of a million records per side
#: (synthetic, schema v2) peaked at 4.7 GiB in all, the rest being the Arrow inputs held in
#: Python, and spilled the remainder; with 2GB it peaked at 5.5 to 6.0 GiB, and with DuckDB's own
#: default (80% of RAM) at 13 GiB. Measured with ``/usr/bin/time -v python -m linkage link
#: --schema config/encoding/v2.toml A B --out DIR --memory-limit L`` on the encoded files
#: ``python bench/linkage.py --datasets synthetic-1m --systems ours`` leaves in bench/out.
DEFAULT_MEMORY_LIMIT = "1.5GB"


class DuckDBEngine:
    """DuckDB in-process, with a memory limit, a spill directory and a thread count.

    Without ``temp_directory`` a private temporary directory is made and removed on close.
    """

    name = "duckdb"

    def __init__(
        self,
        *,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        temp_directory: Path | None = None,
        threads: int | None = None,
    ) -> None:
        self._own_temp = (
            tempfile.TemporaryDirectory(prefix="pprl-duckdb-") if temp_directory is None else None
        )
        spill = Path(self._own_temp.name) if self._own_temp else temp_directory
        config: dict[str, Any] = {"temp_directory": str(spill)}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(config=config)
        self.api = DuckDBAPI(connection=self.con)

    def register(self, tables: Sequence[pa.Table], names: Sequence[str]) -> list[Any]:
        return [
            self.api.register(t, dataset_display_name=n, table_name=f"pprl_input_{i}")
            for i, (t, n) in enumerate(zip(tables, names, strict=True))
        ]

    def scored_pairs(self, predictions: Any, floor: float) -> tuple[dict[int, int], pa.Table]:
        name = predictions.physical_name
        rows = self.con.sql(f"select match_key, count(*) from {name} group by 1").fetchall()
        compared = {int(k): int(n) for k, n in rows}
        result = self.con.sql(
            f"select {RESULT_COLUMNS} from {name} where match_probability >= {floor}"
        ).arrow()
        table = result.read_all() if isinstance(result, pa.RecordBatchReader) else result
        return compared, table

    def close(self) -> None:
        self.con.close()
        if self._own_temp is not None:
            self._own_temp.cleanup()


class SparkEngine:
    """A SparkSession (local or a cluster master URL)."""

    name = "spark"

    def __init__(self, session: Any) -> None:
        from splink import SparkAPI  # needs pyspark; imported only when Spark is used

        self.session = session
        self.api = SparkAPI(  # type: ignore[no-untyped-call]
            spark_session=session, register_udfs_automatically=False
        )

    def register(self, tables: Sequence[pa.Table], names: Sequence[str]) -> list[Any]:
        out = []
        for i, (table, name) in enumerate(zip(tables, names, strict=True)):
            frame = self.session.createDataFrame(table)
            out.append(
                self.api.register(frame, dataset_display_name=name, table_name=f"pprl_input_{i}")
            )
        return out

    def scored_pairs(self, predictions: Any, floor: float) -> tuple[dict[int, int], pa.Table]:
        frame = predictions.as_spark_dataframe()
        compared = {
            int(row["match_key"]): int(row["count"])
            for row in frame.groupBy("match_key").count().collect()
        }
        kept = frame.where(f"match_probability >= {floor}").selectExpr(
            *[c.strip() for c in RESULT_COLUMNS.split(",")]
        )
        table: pa.Table = kept.toArrow()
        return compared, table

    def close(self) -> None:
        """The session belongs to the caller; nothing to close here."""
