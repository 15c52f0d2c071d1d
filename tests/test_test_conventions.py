"""The suite's own rules, so the fast loop stays fast and no test depends on the machine's speed:

- a test that starts a process (subprocess, Popen, a signal), itself or through a helper of its
  module, is marked `slow`: `pytest -m "not slow"` is the fast loop (CONTRIBUTING.md);
- no test asserts a wall-clock upper bound (`assert elapsed < 0.5`): timings go in benchmarks/.
  A bound far above the expected time that only catches a hang (a 20 s wait that should not
  happen at all) says so on its line: `# hang guard: why`.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PROCESS_NAMES = {"subprocess", "Popen", "send_signal"}
CLOCKS = {"monotonic", "perf_counter", "time", "process_time"}


def _names(node: ast.AST) -> set[str]:
    found = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return found | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _module_marked_slow(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and "slow" in ast.unparse(node.value)
        for node in tree.body
    )


def _starting_processes(tree: ast.Module) -> set[str]:
    """Module-level functions that start a process, directly or through one another."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, node in functions.items():
            if name not in found and (_names(node) & (PROCESS_NAMES | found)):
                found.add(name)
                grew = True
    return found


def _test_modules() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(TESTS)), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(TESTS.rglob("test_*.py"))
    ]


def test_tests_that_start_processes_are_marked_slow() -> None:
    unmarked = []
    for name, tree in _test_modules():
        if _module_marked_slow(tree):
            continue
        for function in _starting_processes(tree):
            node = next(n for n in tree.body if getattr(n, "name", None) == function)
            if not function.startswith("test_"):
                continue
            decorators = " ".join(ast.unparse(d) for d in node.decorator_list)
            if "slow" not in decorators:
                unmarked.append(f"{name}::{function}")
    assert unmarked == [], "start a process: mark them @pytest.mark.slow"


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
