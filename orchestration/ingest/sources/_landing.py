"""Shared helpers for the source adapters: prepare a landing folder and write contract tables.

A landing folder holds one Parquet file per contract table (``<dest>/<table>.parquet``) or a
folder of parts (``<dest>/<table>/part-00000.parquet`` ...).  Contract columns are cast to the
Arrow type matching their contract SQL type; extra columns keep the type Arrow infers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.ingest.contract import TABLES

ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
}


def prepare_dest(dest: Path) -> Path:
    """Create ``dest`` and remove contract-table files a previous run left there.

    Only ``<table>.parquet`` and ``<table>/*.parquet`` for the six contract tables are removed,
    so a re-run never mixes stale tables or parts with fresh ones; other files are untouched.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        single = dest / f"{name}.parquet"
        if single.is_file():
            single.unlink()
        folder = dest / name
        if folder.is_dir():
            for part in folder.glob("*.parquet"):
                part.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
    return dest


def to_arrow(table: str, data: pd.DataFrame | pa.Table) -> pa.Table:
    """Convert ``data`` to Arrow, casting contract columns of ``table`` to their contract types."""
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, preserve_index=False)
    data = data.replace_schema_metadata(None)
    contract = TABLES[table]
    missing = [c for c in contract.required_columns if c not in data.column_names]
    if missing:
        raise ValueError(f"{table}: required contract columns missing: {missing}")
    fields = []
    for f in data.schema:
        if f.name in contract.column_names:
            fields.append(pa.field(f.name, ARROW_TYPES[contract.column(f.name).sql_type]))
        elif pa.types.is_large_string(f.type):
            fields.append(pa.field(f.name, pa.string()))
        else:
            fields.append(f)
    return data.cast(pa.schema(fields))


def write_table(path: Path, table: str, data: pd.DataFrame | pa.Table) -> int:
    """Write one contract table (or one part of it) to ``path``; return the row count."""
    arrow = to_arrow(table, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow, path, compression="zstd")
    return arrow.num_rows
