"""Listeners for engine events: console lines, progress bar, JSON and JUnit reports."""

from .console import ConsoleReporter
from .json_report import JsonReport
from .junit import JUnitReport, JUnitSuite
from .progress import ProgressReporter

__all__ = ["ConsoleReporter", "JUnitReport", "JUnitSuite", "JsonReport", "ProgressReporter"]
