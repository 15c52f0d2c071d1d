"""Which tests start a process (subprocess, Popen, a signal, a browser), themselves, through a
helper of their module or through a fixture they use: conftest.py marks them `slow`, so
`pytest -m "not slow"` stays the fast loop without anyone having to remember the mark."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

# A test, helper or fixture naming one of these starts a process (a browser is one too).
PROCESS_NAMES = frozenset({"subprocess", "Popen", "send_signal", "webdriver"})
TESTS = Path(__file__).resolve().parent


def names_in(node: ast.AST) -> set[str]:
    found = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return found | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


@cache
def starting_processes(path: Path) -> frozenset[str]:
    """Module-level functions and classes of a test file that start a process, directly or
    through one another."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, node in nodes.items():
            if name not in found and names_in(node) & (PROCESS_NAMES | found):
                found.add(name)
                grew = True
    return frozenset(found)


def process_fixtures(test_file: Path) -> frozenset[str]:
    """Fixtures of the conftest.py files above a test file that start a process."""
    found: set[str] = set()
    folder = test_file.parent
    while folder == TESTS or TESTS in folder.parents:
        conftest = folder / "conftest.py"
        if conftest.is_file():
            found |= starting_processes(conftest)
        folder = folder.parent
    return frozenset(found)


def starts_a_process(test_file: Path, function: str, cls: str | None, fixtures: set[str]) -> bool:
    """Whether a collected test starts a process: itself, its class, or a fixture it uses."""
    starting = starting_processes(test_file)
    return (
        function in starting
        or (cls is not None and cls in starting)
        or bool(fixtures & (starting | process_fixtures(test_file)))
    )
