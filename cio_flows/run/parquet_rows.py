"""Rows of a Parquet file (`--data FILE.parquet`), streamed one row group at a time, each value
as JSON has it (times as ISO-8601 text, decimals as numbers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DataFileError, Location
from .plain_values import plain_record


def parquet_records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError(
            "reading Parquet needs pyarrow: pip install 'cio-flows[sql]'",
            location=Location(str(path), 1, 1),
            expected="pyarrow installed",
            found="no module pyarrow",
        ) from None
    try:
        parquet = pq.ParquetFile(path)
    except FileNotFoundError:
        raise DataFileError("data file not found", location=Location(str(path), 1, 1)) from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataFileError(
            f"not a readable Parquet file: {exc}",
            location=Location(str(path), 1, 1),
            expected="a Parquet file",
        ) from None
    with parquet:
        for group in range(parquet.num_row_groups):
            for record in parquet.read_row_group(group).to_pylist():
                yield plain_record(record)
