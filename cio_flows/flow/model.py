"""The flow model: frozen, and every node knows where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import Location

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceMap:
    """Positions of the nodes of one YAML document, by their path from the root."""

    file: str
    values: Mapping[Path_, Location] = field(default_factory=dict)
    keys: Mapping[Path_, Location] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        """The closest known position: the node itself, else its nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Location(self.file, 1, 1))


@dataclass(frozen=True)
class Condition:
    """A Jinja expression written without braces, with where it was written."""

    expression: str
    location: Location


@dataclass(frozen=True)
class Wait:
    condition: Condition
    timeout: float = 30.0
    interval: float = 0.2  # first pause; doubles up to max_interval
    max_interval: float = 5.0


@dataclass(frozen=True)
class Step:
    kind: str  # a registered step kind (cio_flows.wire.kinds)
    payload: Any
    name: str
    index: int  # position in its list, 0-based
    section: str  # "steps" or "finally"
    location: Location
    save: str | None = None
    save_value: str | None = None  # an expression over `response`: keep only part of it
    when: Condition | None = None
    expect: tuple[Condition, ...] = ()
    wait_until: Wait | None = None
    loop: Any = None  # an expression or a list; the step runs once per item as `item`
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path_:
        """Path of the step node in the flow document."""
        return (self.section, self.index)

    @cached_property
    def key(self) -> str:
        """Stable identity within a flow, used by the journal and idempotency keys."""
        return f"{self.section}.{self.index}"


@dataclass(frozen=True)
class ForEach:
    file: str | None
    key: str | None
    location: Location


@dataclass(frozen=True)
class Flow:
    path: Path
    name: str
    description: str
    region: str | None
    vars: tuple[tuple[str, Any], ...]
    for_each: ForEach | None
    steps: tuple[Step, ...]
    finally_steps: tuple[Step, ...]
    source: SourceMap

    @property
    def all_steps(self) -> tuple[Step, ...]:
        return self.steps + self.finally_steps

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        return self.source.locate(path, key=key)
