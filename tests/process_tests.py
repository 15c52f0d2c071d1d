"""Which tests start a process (subprocess, Popen, a signal), themselves or through a helper of
their module: conftest.py marks them `slow`, so `pytest -m "not slow"` stays the fast loop
without anyone having to remember the mark."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PROCESS_NAMES = frozenset({"subprocess", "Popen", "send_signal"})


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
