"""The suite's own rules, so the fast loop stays fast and no test depends on the machine's speed:

- a test that starts a process (subprocess, Popen, a signal), itself or through a helper of its
  module, is `slow` (conftest.py marks it): `pytest -m "not slow"` is the fast loop;
- no test asserts a wall-clock upper bound (`assert elapsed < 0.5`): timings go in benchmarks/.
  A bound far above the expected time that only catches a hang (a 20 s wait that should not
  happen at all) says so on its line: `# hang guard: why`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from process_tests import process_fixtures, starting_processes

TESTS = Path(__file__).resolve().parent
CLOCKS = {"monotonic", "perf_counter", "time", "process_time"}


def _names(node: ast.AST) -> set[str]:
    found = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return found | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _test_modules() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(TESTS)), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(TESTS.rglob("test_*.py"))
    ]


def test_tests_that_start_processes_are_found_and_marked_slow(
    request: pytest.FixtureRequest,
) -> None:
    journal = starting_processes(TESTS / "test_journal.py")
    assert "test_sigkill_leaves_a_readable_journal_shown_interrupted" in journal  # Popen
    assert "test_commits_on_a_timer_when_quiet" not in journal  # threads only
    assert "browser" in process_fixtures(TESTS / "browser" / "test_web_page.py")  # Chromium
    whatsapp = starting_processes(TESTS / "test_kinds_whatsapp.py")
    assert "test_the_emulator_records_the_whatsapp_message" not in whatsapp
    # conftest.py marks what is found: a collected process test carries `slow`.
    marked = [
        item
        for item in request.session.items
        if item.path.suffix == ".py" and item.name in starting_processes(item.path)
    ]
    assert all(item.get_closest_marker("slow") for item in marked)


def _is_clock(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCKS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    )


def _is_duration(node: ast.AST) -> bool:
    """`time.monotonic() - started`, or a name that says it is one (`elapsed`)."""
    if "elapsed" in _names(node):
        return True
    return any(
        isinstance(part, ast.BinOp) and isinstance(part.op, ast.Sub) and _is_clock(part.left)
        for part in ast.walk(node)
    )


def _bounds_time_from_above(test: ast.expr) -> bool:
    """`assert <clock or elapsed> < N` (or N > it): a wall-clock upper bound."""
    for compare in (n for n in ast.walk(test) if isinstance(n, ast.Compare)):
        lefts = [compare.left, *compare.comparators[:-1]]
        for op, left, right in zip(compare.ops, lefts, compare.comparators, strict=True):
            below = isinstance(op, ast.Lt | ast.LtE)
            above = isinstance(op, ast.Gt | ast.GtE)
            measured = left if below else right if above else None
            if measured is None:
                continue
            if _is_duration(measured):
                return True
    return False


def test_no_test_asserts_a_wall_clock_upper_bound() -> None:
    found = []
    for name, tree in _test_modules():
        lines = (TESTS / name).read_text(encoding="utf-8").splitlines()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assert)
                and _bounds_time_from_above(node.test)
                and "# hang guard:" not in lines[node.lineno - 1]
            ):
                found.append(f"{name}:{node.lineno}")
    assert found == [], "time it in benchmarks/ instead (CONTRIBUTING.md)"
