"""The workspace file `cio-flows workspace pull` writes: its sections, with comments above each
for what the App API does not show."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..printable import printable


@dataclass
class Pulled:
    """The workspace file's sections, and the comments that go above each."""

    source: str
    templates: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, section: str, text: str) -> None:
        # A note quotes the workspace's names (a segment's, a campaign's): one comment line
        # each, so a name holding a line break cannot add lines of YAML to the file.
        one_line = printable(text).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        self.notes.setdefault(section, []).append(one_line)

    def to_yaml(self) -> str:
        out = io.StringIO()
        out.write(f"# Workspace file pulled by `cio-flows workspace pull` from {self.source}.\n")
        out.write("# Start an emulator from it: cio-flows emulator --workspace FILE\n")
        for line in self.notes.get("", ()):
            out.write(f"# {line}\n")
        out.write("version: 1\nname: pulled\n")
        for section in ("templates", "segments", "people", "broadcasts", "campaigns"):
            items = getattr(self, section)
            out.write("\n")
            for line in self.notes.get(section, ()):
                out.write(f"# {line}\n")
            if items:
                out.write(_dump({section: items}))
        for line in self.notes.get("newsletters", ()):
            out.write(f"\n# {line}" if line.startswith("Newsletters") else f"\n#   {line}")
        out.write("\n")
        return out.getvalue()


def _dump(value: Any) -> str:
    return yaml.safe_dump(
        value, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )
