"""Progress bars for long reads: a widget in JupyterLab, text on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

# Reads shorter than this never show a bar, so quick cells keep clean output.
SHOW_AFTER_SECONDS = 1.0


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...

    def close(self) -> None: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, nbclient, papermill)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def wanted(setting: bool | None) -> bool:
    """None means auto: on in a notebook or on a terminal, off when piped or under pytest."""
    if setting is not None:
        return setting
    return in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())


def bar(enabled: bool, total: int | None, description: str, unit: str = "person") -> Progress:
    """A tqdm bar (widget when ipywidgets is installed) or a silent stand-in."""
    if not enabled:
        return _Silent()
    try:
        from tqdm import std
    except ImportError:  # tqdm comes with papermill; without it there is simply no bar
        return _Silent()
    factory: Callable[..., Any] = std.tqdm
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as widget_bar

            factory = widget_bar
        except ImportError:
            pass  # the text bar renders fine in a notebook's stderr stream
    return factory(
        total=total,
        desc=description,
        unit=unit,
        delay=SHOW_AFTER_SECONDS,
        file=sys.stderr,
        leave=True,
    )
