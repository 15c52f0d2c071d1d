"""Listeners for engine events: console lines, JSON and JUnit reports."""

from .console import ConsoleReporter

__all__ = ["ConsoleReporter"]
