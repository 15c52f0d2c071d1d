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
class UsedLocation(Location):
    """A place in a used flow file, with the `use` steps that brought it in (innermost first)."""

    via: tuple[Location, ...] = ()

    def __str__(self) -> str:
        used = ", ".join(f"used at {site}" for site in self.via)
        return f"{self.file}:{self.line}:{self.column} ({used})" if used else super().__str__()


@dataclass(frozen=True)
class ExpectStatus:
    """`expect_status`: the HTTP statuses a step expects (404, [400, 422], "4xx")."""

    ranges: tuple[tuple[int, int], ...]  # inclusive (low, high)
    text: str  # as written, for messages
    location: Location

    def __contains__(self, status: object) -> bool:
        return isinstance(status, int) and any(low <= status <= high for low, high in self.ranges)

    @property
    def accepts_success(self) -> bool:
        return any(low < 300 and high >= 200 for low, high in self.ranges)


@dataclass(frozen=True, eq=False)  # one object per use: steps of a scope share it
class UseSite:
    """A `- use: FILE` step: the used flow's steps run in its place, in a scope of their own.

    Paths are in the top flow's source map, where the used file's nodes sit under `inner_root`.
    """

    key: str  # the using step's key in the top flow: "steps.2", "steps.2/finally.0"
    name: str  # the using step's name
    file: Path  # the used flow file
    location: Location  # where the using step is written
    path: Path_  # the using step's node
    inner_root: Path_  # the used file's root node
    with_values: tuple[tuple[str, Any], ...]  # replace the used flow's vars of those names
    vars: tuple[tuple[str, Any], ...]  # the used flow's own vars
    save: str | None  # its saves are readable as steps.<save>.<name>
    saves: frozenset[str]  # what the used flow saves, in its own scope
    parent: UseSite | None = None  # the use site of the flow that uses this one, if used


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
    expect_status: ExpectStatus | None = None  # the API's refusal is this step's answer
    validate: bool = True  # False: the payload is sent without schema validation
    # `once: KEY_TEMPLATE`: a step whose rendered key the journal holds (from any run) is skipped
    once: str | None = None
    once_location: Location | None = None
    # A step of a used flow: its scope, its node in the top flow's source map, its key.
    scope: UseSite | None = None
    source_path: Path_ | None = None
    scoped_key: str | None = None

    @property
    def path(self) -> Path_:
        """Path of the step node in the flow document (for a used step, in the merged map)."""
        return self.source_path or (self.section, self.index)

    @cached_property
    def key(self) -> str:
        """Stable identity within a flow, used by the journal and idempotency keys.

        A used flow's step is keyed by the using step and its key in the used file
        (`steps.2/steps.0`): adding steps to the used file after it keeps the keys of the others.
        """
        return self.scoped_key or f"{self.section}.{self.index}"


@dataclass(frozen=True)
class ForEach:
    file: str | None
    key: str | None
    location: Location
    http: dict[str, Any] | None = None  # rows from a paginated HTTP API (run/http_source.py)
    on_duplicate_key: str = "fail"  # or "first" / "last": which row of a repeated key runs
    query: str | None = None  # rows from SQL (run/query_source.py): DuckDB, or `database`
    database: str | None = None  # a SQLAlchemy URL (a template: env.DB_URL)


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
    tags: tuple[str, ...] = ()

    @property
    def all_steps(self) -> tuple[Step, ...]:
        return self.steps + self.finally_steps

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        return self.source.locate(path, key=key)

    @property
    def use_sites(self) -> tuple[UseSite, ...]:
        """The flow's own `use` steps (not those of the flows they use), in running order."""
        sites = (step.scope for step in self.all_steps if step.scope is not None)
        return tuple(dict.fromkeys(_outermost(site) for site in sites))


def _outermost(site: UseSite) -> UseSite:
    while site.parent is not None:
        site = site.parent
    return site
