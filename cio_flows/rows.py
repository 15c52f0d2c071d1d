"""Data rows for for_each / --data: CSV (header row), JSON Lines or a JSON array, streamed."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from .errors import DataFileError, Location

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


@dataclass(frozen=True)
class Row:
    number: int  # 1-based data row number (a CSV's header is not a row)
    line: int  # line in the file, for error messages
    data: dict[str, Any]


@dataclass(frozen=True)
class DataSource:
    path: Path

    @property
    def format(self) -> str:
        fmt = FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise DataFileError(
                "unknown data file type",
                location=Location(str(self.path), 1, 1),
                expected="a .csv, .jsonl, .ndjson or .json file",
                found=f"'{self.path.suffix or 'no extension'}'",
            )
        return fmt

    def columns(self) -> set[str] | None:
        """Field names every row is known to have: the CSV header, or the first JSON row's keys."""
        for row in self.rows():
            return set(row.data)
        if self.format == "csv":
            with self._open() as handle:
                header = next(csv.reader(handle), None)
            return set(header or [])
        return None

    def rows(self) -> Iterator[Row]:
        reader = {"csv": self._csv_rows, "jsonl": self._jsonl_rows, "json": self._json_rows}
        return reader[self.format]()

    def _open(self):
        try:
            return self.path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise DataFileError(
                "data file not found", location=Location(str(self.path), 1, 1)
            ) from None

    def _csv_rows(self) -> Iterator[Row]:
        with self._open() as handle:
            reader = csv.DictReader(handle)
            for number, record in enumerate(reader, start=1):
                if None in record:  # more cells than header columns
                    raise DataFileError(
                        "row has more cells than the header has columns",
                        location=Location(str(self.path), reader.line_num, 1),
                        row=number,
                        expected=f"{len(reader.fieldnames or [])} cells",
                        found=f"{len(reader.fieldnames or []) + len(record[None])} cells",
                    )
                yield Row(number, reader.line_num, record)

    def _jsonl_rows(self) -> Iterator[Row]:
        with self._open() as handle:
            number = 0
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                number += 1
                yield Row(number, line_no, self._json_object(line, line_no, number))

    def _json_object(self, text: str, line_no: int, number: int) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(
                f"invalid JSON: {exc.msg}",
                location=Location(str(self.path), line_no, exc.colno),
                row=number,
            ) from None
        if not isinstance(value, dict):
            raise DataFileError(
                "each row must be a JSON object",
                location=Location(str(self.path), line_no, 1),
                row=number,
                expected="object",
                found=type(value).__name__,
            )
        return value

    def _json_rows(self) -> Iterator[Row]:
        """A JSON array, parsed incrementally so a large file is never held whole."""
        with self.path.open("rb") as handle:
            items = ijson.items(handle, "item", use_float=True)
            number = 0
            try:
                for number, item in enumerate(items, start=1):
                    if not isinstance(item, dict):
                        raise DataFileError(
                            "each row must be a JSON object",
                            location=Location(str(self.path), 1, 1),
                            row=number,
                            expected="object",
                            found=type(item).__name__,
                        )
                    yield Row(number, 1, item)
            except ijson.JSONError as exc:
                raise DataFileError(
                    f"invalid JSON after row {number}: {exc}",
                    location=Location(str(self.path), 1, 1),
                    expected="an array of objects",
                ) from None
