"""A faithful local stand-in for Customer.io's Track, Pipelines and App APIs, on one port.

    from cio_flows.emulator import Emulator
    with Emulator() as emu:          # demo workspace, demo credentials, a free port
        run_flow(..., root=emu.url)   # Pipelines {url}/v1/identify, Track {url}/api/v1/..., App {url}/v1/...
        emu.inspect.people()

State lives in SQLite (in memory unless db_path is given). Rate limits and faults are off unless
configured; limits="customerio" applies Customer.io's documented limits (Track 100/s, Pipelines
1000/s, App 10/s). The emulator imports nothing from the rest of cio_flows.
"""

from typing import TYPE_CHECKING, Any

from .config import DEMO_CREDENTIALS, Credentials, Faults, RateLimit

if TYPE_CHECKING:
    from .server import Emulator, Inspector, serve
    from .workspace import DEMO_PATH, WorkspaceError

# The server (starlette, uvicorn) and the workspace loader load on first use: the command line
# (command.py) parses its options without them, and `cio-flows --help` stays light.
_LAZY = {
    "Emulator": "server",
    "Inspector": "server",
    "serve": "server",
    "DEMO_PATH": "workspace",
    "WorkspaceError": "workspace",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEMO_CREDENTIALS",
    "DEMO_PATH",
    "Credentials",
    "Emulator",
    "Faults",
    "Inspector",
    "RateLimit",
    "WorkspaceError",
    "serve",
]
