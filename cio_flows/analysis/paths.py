"""Relative paths from notebooks, which may run from anywhere.

A kernel's working directory is wherever it was started: the notebook's folder in JupyterLab, the
shell's directory under papermill. So a relative flow or data path is looked up in the working
directory, then in the project around it, then in the cio-flows checkout.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# The checkout that holds this package when installed editable (`pip install -e`); an installed
# wheel's parent is site-packages, which has no pyproject.toml and is skipped.
CHECKOUT = Path(__file__).resolve().parents[2]
PROJECT_MARKERS = ("pyproject.toml", ".git")


def find_path(path: str | Path) -> Path:
    """Where a relative `path` is: under the working directory (returned as given), else under
    the nearest enclosing project (a folder with pyproject.toml or .git), else under the cio-flows
    checkout. Absolute paths, and paths found nowhere, are returned unchanged, so an error names
    the path the caller gave."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    for base in _roots(Path.cwd()):
        if (base / path).exists():
            return base / path
    return path


def _roots(start: Path) -> Iterator[Path]:
    project = next((d for d in (start, *start.parents) if _is_project(d)), None)
    if project is not None:
        yield project
    if (CHECKOUT / "pyproject.toml").is_file():
        yield CHECKOUT


def _is_project(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in PROJECT_MARKERS)
