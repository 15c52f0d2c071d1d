"""How deep JSON data rows may nest, checked on the raw text as it streams in.

A row nested 1,500 levels deep breaks Python's JSON decoder (RecursionError), and a JSON array
holding one 100,000 levels deep costs minutes in the streaming parser (its item prefixes grow
with the depth). The text is scanned for brackets outside strings before any parser sees it,
a block at a time, so the check costs one regex pass and nothing grows with the depth.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import BinaryIO

from ..errors import DataFileError, Location

MAX_ROW_DEPTH = 100  # levels of objects and arrays in one row (the row object is level 1)

# Whole JSON strings, a string's content up to its closing quote, and strings or brackets (for
# positions); unrolled loops (`[^"\\]*(?:\\.[^"\\]*)*`) are the fast form for Python's re.
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRING_BODY = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


class NestingScan:
    """Bracket depth across the blocks of one document; raises DataFileError past the limit.

    Per block: strings removed and brackets counted by regex and bytes methods (C speed); the
    deepest point is computed only when the block opens enough to pass the limit. A string
    still open at a block's end is remembered as a state, not carried as text, so a huge
    string value costs one pass too.
    """

    def __init__(self, file: str, limit: int, line: int = 1, *, outer: int = 0) -> None:
        self.file = file
        self.outer = outer  # levels around the rows (a JSON array's own), not counted in messages
        self.limit = limit + outer
        self.depth = 0
        self.line = line  # line at the start of the next block
        self._in_string = False  # the block ended inside a string...
        self._escaped = False  # ...right after a backslash

    def feed(self, block: bytes, *, row: int | None = None) -> None:
        start = self._string_end(block) if self._in_string else 0
        if start < 0:  # the whole block is inside one string
            self.line += block.count(b"\n")
            return
        end = len(block)
        stripped = _STRINGS.sub(b"", block[start:])
        # A quote left opens a string still open at the block's end: nothing after it was
        # removed (inside it every quote is escaped), so it is the block's tail.
        open_at = stripped.find(b'"')
        if open_at >= 0:
            end = len(block) - (len(stripped) - open_at)
            stripped = stripped[:open_at]
            body = _STRING_BODY.match(block, end + 1)
            self._in_string = True
            self._escaped = body is not None and body.end() == len(block) - 1  # a `\` last
        brackets = stripped.translate(None, _NOT_BRACKETS)
        opens = brackets.count(b"[") + brackets.count(b"{")
        if self.depth + opens > self.limit:
            deepest = max(accumulate(map(_STEP.__getitem__, brackets), initial=self.depth))
            if deepest > self.limit:
                raise self._too_deep(block, start, end, row)
        self.depth += 2 * opens - len(brackets)
        self.line += block.count(b"\n")

    def _string_end(self, block: bytes) -> int:
        """Where the string the last block left open ends in this one (-1: not in it)."""
        begin = 1 if self._escaped else 0
        if begin > len(block):
            return -1
        body = _STRING_BODY.match(block, begin)
        end = body.end() if body is not None else begin
        if end < len(block) and block[end : end + 1] == b'"':
            self._in_string = self._escaped = False
            return end + 1
        self._escaped = end == len(block) - 1  # stopped at a backslash, the block's last byte
        return -1

    def _too_deep(self, block: bytes, start: int, end: int, row: int | None) -> DataFileError:
        """The error at the bracket that goes past the limit (found again, token by token)."""
        depth, offset = self.depth, start
        for token in _TOKENS.finditer(block, start, end):
            value = token.group()
            if len(value) == 1:
                depth += _STEP[value[0]]
                if depth > self.limit:
                    offset = token.start()
                    break
        line = self.line + block.count(b"\n", 0, offset)
        limit = self.limit - self.outer
        return DataFileError(
            f"a row nests deeper than {limit} levels",
            location=Location(self.file, line, _column(block, offset)),
            row=row,
            expected=f"rows at most {limit} levels deep",
            found=f"level {depth - self.outer}",
        )


def _column(text: bytes, offset: int) -> int:
    start = text.rfind(b"\n", 0, offset) + 1
    return len(text[start:offset].decode("utf-8", "replace")) + 1


class NestingGuard:
    """A binary file whose reads are scanned (NestingScan) before a JSON parser gets them."""

    def __init__(self, handle: BinaryIO, scan: NestingScan) -> None:
        self._handle = handle
        self._scan = scan

    def read(self, size: int = -1) -> bytes:
        block = self._handle.read(size)
        self._scan.feed(block)
        return block

    def readline(self, size: int = -1) -> bytes:
        block = self._handle.readline(size)
        self._scan.feed(block)
        return block


def check_line_nesting(text: str, file: str, line: int, row: int, limit: int) -> None:
    """One JSON Lines row: DataFileError if it nests past `limit` (counting is cheap first)."""
    if text.count("[") + text.count("{") <= limit:
        return
    NestingScan(file, limit, line).feed(text.encode("utf-8"), row=row)
