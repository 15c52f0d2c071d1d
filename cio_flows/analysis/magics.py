"""IPython magics: a notebook cell of flow YAML, run or planned without writing a file first.

    %load_ext cio_flows
    %%cio_flow --emulator --var plan=pro
    version: 1
    name: from_a_cell
    vars: {plan: free}
    steps:
      - identify: {userId: cell_user, traits: {plan: "{{ plan }}"}}

`%%cio_flow` shows one row per step result (the RunSummary is in `.attrs["summary"]`);
`%%cio_plan` the requests a run would send. Without `--emulator`, the workspace in the
CUSTOMERIO_* variables. The emulator is started once per notebook and kept for its later cells.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..errors import CioFlowsError
from ..run.prepare import RunOptions
from .flows import describe_summary, plan_table
from .paths import find_path
from .workspace import Workspace


@contextmanager
def cell_file(cell: str) -> Iterator[Path]:
    """The cell as a flow file in the working directory (so `use:` and data paths resolve as
    they would for a file saved beside the notebook); removed afterwards."""
    handle, name = tempfile.mkstemp(prefix="cio_flow_cell_", suffix=".yaml", dir=os.getcwd())
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(cell)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def parse_vars(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var expects NAME=VALUE, found {pair!r}")
        found[name] = value
    return found


def _without_keys() -> dict[str, str]:
    """The environment for `--emulator`: no CUSTOMERIO_* settings, so the emulator uses its own
    keys and the cell never reaches the workspace the notebook may be connected to."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}


@magics_class
class FlowMagics(Magics):
    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self._workspaces: dict[bool, Workspace] = {}

    def workspace(self, emulator: bool) -> Workspace:
        """One workspace per target for the notebook's life: an emulator keeps its state."""
        if emulator not in self._workspaces:
            try:
                found = (
                    Workspace.emulator(environ=_without_keys())
                    if emulator
                    else Workspace.from_env()
                )
            except CioFlowsError as exc:
                raise UsageError(str(exc)) from None
            self._workspaces[emulator] = found
        return self._workspaces[emulator]

    def close(self) -> None:
        for workspace in self._workspaces.values():
            workspace.close()
        self._workspaces.clear()

    def _call(self, line: str, cell: str, magic: str, method: str) -> pd.DataFrame:
        args = parse_argstring(getattr(self, magic), line)
        # A plan sends nothing: without --emulator it needs no workspace, nor its keys, as
        # `cio-flows plan` needs none.
        offline = method == "plan_table" and not args.emulator
        workspace = None if offline else self.workspace(args.emulator)
        with cell_file(cell) as path:
            try:
                if workspace is None:
                    data = find_path(args.data) if args.data is not None else None
                    table = plan_table(path, RunOptions(vars=parse_vars(args.var), data=data))
                else:
                    table = getattr(workspace, method)(path, args.data, **parse_vars(args.var))
            except CioFlowsError as exc:  # an invalid cell: its message, not a traceback
                raise UsageError(str(exc).replace(str(path), "<cell>")) from None
        return table

    @magic_arguments()
    @argument("--emulator", action="store_true", help="run on a local emulator")
    @argument("--var", action="append", default=[], metavar="NAME=VALUE")
    @argument("--data", default=None, help="rows for the flow's for_each (CSV, JSON, JSONL)")
    @cell_magic
    def cio_flow(self, line: str, cell: str) -> pd.DataFrame:
        """Run the cell's flow: one row per step result."""
        table = self._call(line, cell, "cio_flow", "run")
        print(describe_summary(table.attrs["summary"]))
        return table

    @magic_arguments()
    @argument("--emulator", action="store_true", help="plan against a local emulator")
    @argument("--var", action="append", default=[], metavar="NAME=VALUE")
    @argument("--data", default=None, help="rows for the flow's for_each (CSV, JSON, JSONL)")
    @cell_magic
    def cio_plan(self, line: str, cell: str) -> pd.DataFrame:
        """The requests the cell's flow would send; sends nothing."""
        table = self._call(line, cell, "cio_plan", "plan_table")
        steps = ", ".join(dict.fromkeys(table["step"]))
        print(f"plan: {len(table)} request(s), nothing sent; steps: {steps}")
        return table


def load(shell: InteractiveShell) -> None:
    magics = FlowMagics(shell)
    shell.register_magics(magics)
    atexit.register(magics.close)  # stop an emulator the magics started with the kernel
