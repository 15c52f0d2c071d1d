"""A fresh clone must work whatever order pip installs the two official clients in.

`customerio` and `customerio-cdp-analytics` both ship `customerio/__init__.py`. Installed in that
order, the second leaves an empty one, so `from customerio import APIClient` is an ImportError;
the other order happens to work. Names must come from the modules that define them
(`customerio.api`, `customerio.track`, `customerio.client_base`, `customerio.analytics`).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "benchmarks", "cio_flows", "notebooks")
PACKAGE = "customerio"
# Found without importing it: importing the root is what this file forbids.
INSTALLED = Path(importlib.util.find_spec(PACKAGE).submodule_search_locations[0])
# Submodules of the package: `from customerio import analytics` loads the submodule itself, so it
# does not depend on what the root __init__.py exports.
SUBMODULES = frozenset(
    path.stem if path.is_file() else path.name
    for path in INSTALLED.iterdir()
    if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
)


def _sources() -> list[tuple[str, str]]:
    """(name, Python source) for every .py file and every notebook code cell under SCANNED."""
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            found.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
        for path in sorted((ROOT / top).rglob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type == "code":  # magics (%load_ext) made Python, as IPython does
                    source = TransformerManager().transform_cell(cell.source)
                    found.append((f"{path.relative_to(ROOT)}[cell {index}]", source))
    return found


def _in_package(module: str | None) -> bool:
    return module is not None and module.split(".")[0] == PACKAGE


def _touches_package(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and _in_package(node.module)
    if isinstance(node, ast.Import):
        return any(_in_package(alias.name) for alias in node.names)
    return False


def _customerio_imports(source: str) -> list[ast.stmt]:
    """Every import statement that touches the customerio package, at any depth."""
    return [node for node in ast.walk(ast.parse(source)) if _touches_package(node)]


def root_imports(source: str) -> list[str]:
    """`line: statement` for each import that reads names from the package root."""
    bad = []
    for node in _customerio_imports(source):
        if isinstance(node, ast.ImportFrom):
            reads_root = node.module == PACKAGE and any(
                alias.name not in SUBMODULES for alias in node.names
            )
        else:  # a bare `import customerio` is only useful for its root attributes
            reads_root = any(alias.name == PACKAGE for alias in node.names)
        if reads_root:
            bad.append(f"{node.lineno}: {ast.unparse(node)}")
    return bad


def test_the_checker_finds_root_imports():
    source = (
        "import customerio\n"
        "import customerio.api\n"
        "from customerio import analytics\n"
        "def f():\n"
        "    from customerio import CustomerIO, track\n"
        "from customerio.api import APIClient\n"
    )
    assert root_imports(source) == [
        "1: import customerio",
        "5: from customerio import CustomerIO, track",
    ]


def test_nothing_imports_names_from_the_customerio_package_root():
    offenders = [f"{name}:{line}" for name, source in _sources() for line in root_imports(source)]
    assert not offenders, (
        "import these from customerio.api / .track / .client_base / .analytics instead, "
        "the package root may be the empty __init__.py of customerio-cdp-analytics:\n"
        + "\n".join(offenders)
    )


@pytest.fixture(scope="module")
def emptied_package(tmp_path_factory) -> Path:
    """A copy of the installed package whose __init__.py is empty, as the unlucky order leaves it."""
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(INSTALLED, site / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    (site / PACKAGE / "__init__.py").write_text("")
    return site


@pytest.mark.slow
def test_every_customerio_import_works_with_an_empty_package_root(emptied_package):
    statements = sorted(
        {ast.unparse(node) for _, source in _sources() for node in _customerio_imports(source)}
    )
    assert statements, "the official-client tests and benchmarks import customerio"
    program = (
        "import sys, customerio\n"
        f"assert customerio.__file__.startswith({str(emptied_package)!r}), customerio.__file__\n"
        + "".join(f"{statement}\n" for statement in statements)
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": str(emptied_package)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
