"""The README's table of step kinds, rendered from the step-kind and API-family registries.

`python -m cio_flows.wire.docs README.md` rewrites the table between the two markers;
tests/test_registry.py fails while the README's copy differs from the registries.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import kinds
from .families import PEOPLE_FAMILIES, family_spec
from .kinds.registry import ANY

START = "<!-- step-kinds:start -->"
END = "<!-- step-kinds:end -->"


def step_kinds_table() -> str:
    """A Markdown table: every step kind, what it does, the API family it calls, the keys it needs."""
    lines = [
        "| step kind | what it does | API family | keys needed |",
        "|---|---|---|---|",
    ]
    for kind in _in_reading_order(kinds.all_kinds()):
        family, keys = _family_and_keys(kind)
        description = kind.description.replace("|", "\\|")
        lines.append(f"| `{kind.name}` | {description} | {family} | {keys} |")
    return "\n".join(lines) + "\n"


def _in_reading_order(declared: tuple[kinds.StepKind, ...]) -> list[kinds.StepKind]:
    """People writes, then other writes, then reads; declaration order within each."""
    return sorted(declared, key=lambda kind: (kind.reads, kind.family != kinds.PEOPLE))


def _family_and_keys(kind: kinds.StepKind) -> tuple[str, str]:
    if kind.family == ANY:
        return "the one `api` names", "that family's keys"
    names = PEOPLE_FAMILIES if kind.family == kinds.PEOPLE else (kind.family,)
    keys = [" + ".join(f"`{var}`" for var in family_spec(name).credentials) for name in names]
    return ", else ".join(names), ", or ".join(keys)


def with_table(text: str) -> str:
    """`text` (a README) with the table between its markers replaced by the current one."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"expected the markers {START} and {END}, in that order")
    return text[: start + len(START)] + "\n" + step_kinds_table() + text[end:]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m cio_flows.wire.docs README.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
