"""`pip install -e .` (the README's first command) installs every module a run imports.

A module the run path imports but only an extra declares works in a dev install and breaks a bare
one: `platformdirs` (the default journal's folder) was declared by the notebooks extra alone, and
`cio-flows run flows/onboarding.yaml --emulator` failed with ModuleNotFoundError on a fresh machine.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cio_flows"
# Imported only for what an extra provides: the module, and the extra that must declare it.
OPTIONAL = {
    "duckdb": "sql",  # --query, Parquet
    "sqlalchemy": "sql",  # --database
    "pyarrow": "sql",  # --data x.parquet
}
# Whole parts of the package that only an extra's users load.
EXTRA_ONLY = ("analysis", "pytest_plugin.py")


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _closure(names: set[str]) -> set[str]:
    """The distributions `names` need, transitively (their own extras left out)."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return found


def _imported_modules() -> dict[str, set[str]]:
    """Third-party top-level module -> the files of the run path importing it."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in EXTRA_ONLY:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "cio_flows":
                    found.setdefault(top, set()).add(str(relative))
    return found


def test_every_module_the_run_imports_comes_with_a_bare_install():
    project = _project()
    core = _closure({_name(r) for r in project["dependencies"]})
    distributions = metadata.packages_distributions()
    missing = {}
    for module, files in _imported_modules().items():
        if module in OPTIONAL:
            continue
        provided_by = {_name(d) for d in distributions.get(module, [module])}
        if not provided_by & core:
            missing[module] = sorted(files)
    assert missing == {}, (
        f"imported on the run path, not installed by `pip install -e .`: {missing}"
    )


def test_modules_for_optional_sources_are_declared_by_their_extra():
    extras = _project()["optional-dependencies"]
    distributions = metadata.packages_distributions()
    for module, extra in OPTIONAL.items():
        declared = {_name(r) for r in extras[extra]}
        assert {_name(d) for d in distributions.get(module, [module])} & declared, (module, extra)
    assert "platformdirs" in _imported_modules()  # the check sees the journal's import
