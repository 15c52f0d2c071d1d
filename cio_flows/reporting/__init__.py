"""Listeners for engine events: console lines, progress bar, JSON and JUnit reports; hooks
for the HTTP exchange (-v, --trace)."""

from typing import Any

from .console import ConsoleReporter
from .json_report import JsonReport
from .junit import JUnitReport, JUnitSuite
from .trace import TraceFile, VerboseExchanges


def __getattr__(name: str) -> Any:
    """ProgressReporter on first use: it loads rich, which commands that draw no bar skip."""
    if name == "ProgressReporter":
        from .progress import ProgressReporter

        return ProgressReporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConsoleReporter",
    "JUnitReport",
    "JUnitSuite",
    "JsonReport",
    "ProgressReporter",
    "TraceFile",
    "VerboseExchanges",
]
