"""Data rows for for_each / --data: CSV (header row), JSON Lines or a JSON array, streamed.

`DataSource.check()` reads the whole file once before anything is sent: encoding, CSV cell
counts, JSON syntax, one object per row and (given the key of a row) unique row keys. A file
that breaks any of these is refused with its line, so a run never stops half-way through it.
"""

from __future__ import annotations

import csv
import json
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, TypeVar

import ijson

from ..errors import DataFileError, Location
from ..flow.sandbox import MAX_SIZE
from .row_nesting import MAX_ROW_DEPTH, NestingGuard, NestingScan, check_line_nesting

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

_Handle = TypeVar("_Handle", BinaryIO, TextIO)
_Made = TypeVar("_Made")

FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_PIECE = 1 << 16  # bytes fed to the JSON parser at a time when locating lines


@dataclass(frozen=True)
class Row:
    number: int  # 1-based data row number (a CSV's header is not a row)
    line: int  # line in the file where the row starts, for error messages
    data: dict[str, Any]


@dataclass(frozen=True)
class Checked:
    """What the pre-pass found: the rows to run, and the duplicate rows left out (number ->
    why), which a run skips."""

    count: int
    dropped: dict[int, str] = field(default_factory=dict)


KeyOf = Callable[[Row], "str | None"]  # a row's for_each key; None when it cannot be rendered


@dataclass(frozen=True)
class DataSource:
    path: Path
    # Rows an HTTP source fetched into a spool file: read again on resume, not fingerprinted.
    fetched: bool = False
    label: str | None = None  # what errors name instead of the path (a query's spool file)

    @property
    def shown(self) -> str:
        return self.label or str(self.path)

    @property
    def format(self) -> str:
        fmt = FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise DataFileError(
                "unknown data file type",
                location=Location(self.shown, 1, 1),
                expected="a .csv, .jsonl, .ndjson, .json or .parquet file",
                found=f"'{self.path.suffix or 'no extension'}'",
            )
        return fmt

    def columns(self) -> set[str] | None:
        """Field names every row is known to have: the CSV header, or the first JSON row's keys."""
        for row in self.rows():
            return set(row.data)
        if self.format == "csv":
            with self._text() as handle:
                header = next(csv.reader(handle), None)
            return set(header or [])
        return None

    def rows(self, skip: Callable[[int], bool] | None = None) -> Iterator[Row]:
        """Every row, in order; with `skip`, those whose number it holds for are left out (a
        worker process reads past the others' chunks: a CSV row left out is never built)."""
        if self.format == "csv":
            return self._csv_rows(skip)
        reader = {"jsonl": self._jsonl_rows, "json": self._json_rows, "parquet": self._parquet_rows}
        rows = reader[self.format]()
        return rows if skip is None else (row for row in rows if not skip(row.number))

    def _parquet_rows(self) -> Iterator[Row]:
        """A Parquet file, one row group in memory at a time; `line` is the row number."""
        from .parquet_rows import parquet_records  # pyarrow: loaded only for Parquet

        for number, record in enumerate(parquet_records(self.path), start=1):
            yield Row(number, number, record)

    # --- the pre-pass ----------------------------------------------------------------------

    def check(self, key_of: KeyOf | None = None) -> int:
        """Read every row once, keeping 8 bytes a row; raise DataFileError on the first fault.

        With key_of, rows with the same key are refused naming every duplicate: they would get
        the same messageId and Customer.io would silently drop the second. Returns the row count.
        """
        return self.check_keys(key_of, "fail").count

    def check_keys(
        self, key_of: KeyOf | None, on_duplicate: str = "fail", key_column: str | None = None
    ) -> Checked:
        """As check(); duplicate keys are refused ("fail") or all but the first or the last row
        of each key are left out ("first", "last"), each of them named in `Checked.dropped`.

        key_column: a column whose cell, when a string of at most MAX_SIZE characters, is what
        key_of gives (a `{{ row.x }}` key): a CSV's rows are then keyed without being built."""
        if key_of is None:
            return Checked(sum(1 for _ in self.rows()))
        hashes = _KeyHashes()
        count = 0
        for key in self._row_keys(key_of, key_column):
            count += 1
            if key is not None:
                hashes.add(key)
        suspects = hashes.colliding()
        if not suspects:
            return Checked(count)
        duplicates = self._duplicates(key_of, suspects)
        if not duplicates:  # only the 8-byte hashes collided
            return Checked(count)
        if on_duplicate == "fail":
            raise self._duplicate_error(duplicates)
        dropped: dict[int, str] = {}
        for key, rows in duplicates.items():
            kept = rows[0] if on_duplicate == "first" else rows[-1]
            for row in rows:
                if row is not kept:
                    dropped[row.number] = (
                        f"row {row.number} (line {row.line}) left out: key {key!r} is also on"
                        f" line {kept.line}, kept (on_duplicate_key: {on_duplicate})"
                    )
        return Checked(count - len(dropped), dropped)

    def _row_keys(self, key_of: KeyOf, key_column: str | None) -> Iterator[str | None]:
        """Every row's key, in file order."""
        if key_column is not None and self.format == "csv":
            yield from self._csv_keys(key_of, key_column)
            return
        for row in self.rows():
            yield key_of(row)

    def _duplicates(self, key_of: KeyOf, suspects: set[int]) -> dict[str, list[Row]]:
        """Second pass over the rows whose key hash collided: every key on two rows or more,
        with its rows in file order."""
        seen: dict[str, list[Row]] = {}
        rows = self._json_located() if self.format == "json" else self.rows()
        for row in rows:
            key = key_of(row)
            if key is None or _key_hash(key) not in suspects:
                continue
            seen.setdefault(key, []).append(Row(row.number, row.line, {}))  # no data kept
        return {key: rows for key, rows in seen.items() if len(rows) > 1}

    def _duplicate_error(self, duplicates: dict[str, list[Row]]) -> DataFileError:
        first_rows = min(duplicates.values(), key=lambda rows: rows[1].line)
        second, first = first_rows[1], first_rows[0]
        others = sum(len(rows) - 1 for rows in duplicates.values()) - 1
        more = f" (and {others} more duplicate row(s))" if others else ""
        every = "; ".join(
            f"key {key!r} on lines " + _and_list([str(row.line) for row in rows])
            for key, rows in sorted(duplicates.items(), key=lambda item: item[1][0].line)
        )
        return DataFileError(
            f"duplicate for_each key: line {second.line} has the same key as line {first.line}"
            + more,
            location=Location(self.shown, second.line, 1),
            row=second.number,
            expected="a different key on every row (each row's messageIds come from it), or"
            " for_each.on_duplicate_key: first | last",
            found=every,
        )

    # --- opening ---------------------------------------------------------------------------

    def _open(self) -> BinaryIO:
        return self._opened(lambda: self.path.open("rb"))

    def _opened(self, opener: Callable[[], _Handle]) -> _Handle:
        try:
            return opener()
        except FileNotFoundError:
            raise self._unreadable("data file not found") from None
        except IsADirectoryError:
            raise self._unreadable("the data file is a directory") from None
        except OSError as exc:
            raise self._unreadable(f"cannot read the data file: {exc.strerror or exc}") from None

    def _unreadable(self, reason: str) -> DataFileError:
        return DataFileError(reason, location=Location(self.shown, 1, 1))

    @contextmanager
    def _text(self) -> Iterator[TextIO]:
        """The file as UTF-8 text; a byte that is not UTF-8 becomes an error naming its line."""
        try:
            with self._opened(lambda: self.path.open(encoding="utf-8-sig", newline="")) as handle:
                yield handle
        except UnicodeDecodeError:
            error = self._encoding_error()
            raise error or self._unreadable("the data file is not valid UTF-8") from None

    def _encoding_error(self, last_line: int | None = None) -> DataFileError | None:
        """Where the first byte that is not UTF-8 is, if on or before last_line (text decodes in
        blocks, and the JSON parser's message has no position)."""
        with self._open() as handle:
            for line_no, raw in enumerate(handle, start=1):
                if last_line is not None and line_no > last_line:
                    return None
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                    return DataFileError(
                        "the data file is not valid UTF-8",
                        location=Location(self.shown, line_no, column),
                        expected="UTF-8 text",
                        found=f"byte 0x{raw[exc.start]:02x}",
                    )
        return None

    # --- CSV -------------------------------------------------------------------------------

    def _csv_rows(self, skip: Callable[[int], bool] | None = None) -> Iterator[Row]:
        with self._text() as handle:
            # strict: a quote left open swallows the rest of the file as one cell otherwise
            reader = csv.reader(handle, strict=True)
            header = self._csv_header(reader)
            yield from self._csv_records(reader, header, skip)

    def _csv_header(self, reader: CsvReader) -> list[str]:
        try:
            header: list[str] = next(reader, [])
        except csv.Error as exc:
            raise self._csv_error(exc, 1) from None
        seen: set[str] = set()
        for name in header:
            if name in seen:
                raise DataFileError(
                    f"the header names column '{name}' twice",
                    location=Location(self.shown, reader.line_num, 1),
                    expected="distinct column names",
                    found=", ".join(header),
                )
            seen.add(name)
        return header

    def _csv_records(
        self, reader: CsvReader, header: list[str], skip: Callable[[int], bool] | None = None
    ) -> Iterator[Row]:
        """The rows of the records left; one `skip` holds for is never built."""

        def row(number: int, line: int, record: list[str]) -> Row | None:
            if skip is not None and skip(number):
                return None
            return Row(number, line, _mapping(header, record))

        for built in self._csv_cells(reader, len(header), row):
            if built is not None:
                yield built

    def _csv_keys(self, key_of: KeyOf, column: str) -> Iterator[str | None]:
        """Each row's key as `_row_keys` gives it, the cell itself when it is the key: no row
        mapping is built for the pre-pass, and the checks and errors are the rows' own."""
        with self._text() as handle:
            reader = csv.reader(handle, strict=True)
            header = self._csv_header(reader)
            if column not in header:  # key_of says what a missing column makes of a key
                yield from map(key_of, self._csv_records(reader, header))
                return
            index = header.index(column)

            def key(number: int, line: int, record: list[str]) -> str | None:
                cell = record[index]
                if len(cell) <= MAX_SIZE:
                    return cell
                return key_of(Row(number, line, _mapping(header, record)))

            yield from self._csv_cells(reader, len(header), key)

    def _csv_cells(
        self, reader: CsvReader, width: int, make: Callable[[int, int, list[str]], _Made]
    ) -> Iterator[_Made]:
        """make(number, line, cells) for each record, once its cells are counted."""
        number = 0
        start = reader.line_num + 1  # where the next record starts: a quoted cell may span lines
        try:
            for record in reader:
                if record:  # a blank line is no row
                    number += 1
                    if len(record) != width:
                        raise self._cell_count_error(start, number, width, len(record))
                    yield make(number, start, record)
                start = reader.line_num + 1
        except csv.Error as exc:
            raise self._csv_error(exc, start, number + 1) from None

    def _csv_error(self, exc: csv.Error, line: int, number: int | None = None) -> DataFileError:
        return DataFileError(
            f"CSV syntax error in the row starting here: {exc}",
            location=Location(self.shown, line, 1),
            row=number,
        )

    def _cell_count_error(self, line: int, number: int, width: int, found: int) -> DataFileError:
        fewer = "fewer" if found < width else "more"
        return DataFileError(
            f"row has {fewer} cells than the header has columns",
            location=Location(self.shown, line, 1),
            row=number,
            expected=f"{width} cells",
            found=f"{found} cells",
        )

    # --- JSON Lines ------------------------------------------------------------------------

    def _jsonl_rows(self) -> Iterator[Row]:
        with self._text() as handle:
            number = 0
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                number += 1
                yield Row(number, line_no, self._json_object(line, line_no, number))

    def _json_object(self, text: str, line_no: int, number: int) -> dict[str, Any]:
        check_line_nesting(text, self.shown, line_no, number, MAX_ROW_DEPTH)
        try:
            value = json.loads(text, parse_constant=_not_a_json_number)
        except _NotJsonNumber as exc:
            raise DataFileError(
                f"{exc.args[0]} is not a JSON number (JSON has no NaN or Infinity)",
                location=Location(self.shown, line_no, text.find(exc.args[0]) + 1),
                row=number,
                expected="a finite number, or null",
                found=exc.args[0],
            ) from None
        except json.JSONDecodeError as exc:
            raise DataFileError(
                f"invalid JSON: {exc.msg}",
                location=Location(self.shown, line_no, exc.colno),
                row=number,
            ) from None
        if not isinstance(value, dict):
            raise self._not_an_object(line_no, number, value)
        return value

    def _not_an_object(self, line: int, number: int, value: Any) -> DataFileError:
        return DataFileError(
            "each row must be a JSON object",
            location=Location(self.shown, line, 1),
            row=number,
            expected="object",
            found=type(value).__name__,
        )

    # --- JSON array ------------------------------------------------------------------------

    def _json_rows(self) -> Iterator[Row]:
        """A JSON array, parsed incrementally (in C) so a large file is never held whole.

        Its events carry no positions, so rows get line 0 here; on any fault the file is parsed
        again in line-sized pieces (`_json_located`) to name the line.
        """
        with self._open() as handle:
            line = self._json_start(handle)
            number = 0
            guarded = self._nesting_guard(handle, line)
            try:
                for number, item in enumerate(ijson.items(guarded, "item", use_float=True), 1):
                    if not isinstance(item, dict):
                        break
                    yield Row(number, 0, item)
                else:
                    return
            except (ijson.JSONError, UnicodeDecodeError):
                pass
        for _ in self._json_located():  # raises the fault with its line
            pass
        raise self._unreadable(f"invalid JSON after row {number}")  # only if the file changed

    def _nesting_guard(self, handle: BinaryIO, line: int) -> NestingGuard:
        """Reads of the array scanned for nesting first: the array is level 1, its rows 2."""
        return NestingGuard(handle, NestingScan(self.shown, MAX_ROW_DEPTH, line, outer=1))

    def _json_start(self, handle: BinaryIO) -> int:
        """Skip a BOM; refuse a file that is not an array before parsing it. Returns the line
        the reads go on from (1: the whitespace before the array is read again)."""
        if handle.read(3) != _BOM:
            handle.seek(0)
        start = handle.tell()
        line, first = 1, b""
        while chunk := handle.read(4096):
            stripped = chunk.lstrip(_WHITESPACE)
            if stripped:
                line += chunk[: len(chunk) - len(stripped)].count(b"\n")
                first = stripped[:1]
                break
            line += chunk.count(b"\n")
        handle.seek(start)
        if first != b"[":
            raise DataFileError(
                "a .json data file must be an array of row objects",
                location=Location(self.shown, line, 1),
                expected="'['",
                found=f"'{first.decode('utf-8', 'replace')}'" if first else "an empty file",
            )
        return 1

    def _json_located(self) -> Iterator[Row]:
        """Rows of a JSON array with the line each starts on: slower, for faults and duplicates."""
        events = ijson.sendable_list()
        parser = ijson.parse_coro(events, use_float=True)
        items = _ItemBuilder(self)
        line = last = 1
        with self._open() as handle:
            guarded = self._nesting_guard(handle, self._json_start(handle))
            for piece in iter(lambda: guarded.readline(_PIECE), b""):
                last = line
                self._json_feed(parser, piece, line)
                yield from items.rows(events, line)
                del events[:]
                line += piece.endswith(b"\n")
            self._json_feed(parser, None, last)
            yield from items.rows(events, last)

    def _json_feed(self, parser: Any, piece: bytes | None, line: int) -> None:
        try:
            if piece is None:
                parser.close()
            else:
                parser.send(piece)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise self._encoding_error(line) or DataFileError(
                f"invalid JSON: {_first_line(exc)}",
                location=Location(self.shown, line, 1),
            ) from None


def _mapping(header: list[str], record: list[str]) -> dict[str, str]:
    """A CSV row's mapping; its cells were counted (strict=True would count them again)."""
    return dict(zip(header, record, strict=False))


class _ItemBuilder:
    """Top-level array items rebuilt from parse events, each with the line it starts on."""

    def __init__(self, source: DataSource) -> None:
        self.source = source
        self.number = 0
        self.line = 0
        self.depth = 0  # containers open inside the current item
        self.builder = ijson.ObjectBuilder()

    def rows(self, events: list[tuple[str, str, Any]], line: int) -> Iterator[Row]:
        for prefix, event, value in events:
            if prefix == "":
                continue  # the array itself
            if self.depth == 0:  # between items: this event starts one
                self.number, self.line = self.number + 1, line
                self.builder = ijson.ObjectBuilder()
            self.builder.event(event, value)
            if event in ("start_map", "start_array"):
                self.depth += 1
            elif event in ("end_map", "end_array"):
                self.depth -= 1
            if self.depth == 0:  # the item is complete
                item = self.builder.value
                if not isinstance(item, dict):
                    raise self.source._not_an_object(self.line, self.number, item)
                yield Row(self.number, self.line, item)


# --- duplicate keys in bounded memory ------------------------------------------------------

_key_hash = hash  # 64 bits, and only compared within this process; collisions are rechecked


def _and_list(items: list[str]) -> str:
    """'2 and 4', '2, 4 and 7'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class _KeyHashes:
    """Each row key's 8-byte hash, in 256 arrays by low byte: duplicates are then found one
    small bucket at a time, so the only memory that grows with the file is 8 bytes a row."""

    def __init__(self) -> None:
        self.buckets = [array("q") for _ in range(256)]

    def add(self, key: str) -> None:
        value = _key_hash(key)
        self.buckets[value & 255].append(value)

    def colliding(self) -> set[int]:
        found: set[int] = set()
        for bucket in self.buckets:
            if len(set(bucket)) < len(bucket):
                seen: set[int] = set()
                for value in bucket:
                    if value in seen:
                        found.add(value)
                    seen.add(value)
        return found


class _NotJsonNumber(ValueError):
    """NaN, Infinity or -Infinity in a JSON row: Python reads them, no API does."""


def _not_a_json_number(name: str) -> Any:
    raise _NotJsonNumber(name)


def _first_line(exc: Exception) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
