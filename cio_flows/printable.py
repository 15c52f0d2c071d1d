"""Text from outside (server answers, data rows, file names) made safe to print on a terminal.

A server's error body can hold escape sequences: OSC 52 writes the clipboard, others clear the
screen or colour a forged "all ok", and a carriage return overwrites the line before it. Every
control character, and the Unicode marks that reorder text, is shown as an escape instead.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL, bidi embeddings/overrides/isolates and direction marks.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_IN_LINES = re.compile(f"[{_CONTROLS}]")  # keeps newlines and tabs
_UNSAFE_IN_LINE = re.compile(f"[{_CONTROLS}\n]")  # one line: a newline could forge another


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with its control characters escaped (`\\x1b`, `\\r`); newlines too unless `lines`."""
    pattern = _UNSAFE_IN_LINES if lines else _UNSAFE_IN_LINE
    return pattern.sub(_escape, text)
