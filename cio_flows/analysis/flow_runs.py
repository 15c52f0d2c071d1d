"""Workspace methods that plan, run and resume flows against the workspace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..run.prepare import RunOptions
from . import flows
from .paths import find_path


class FlowRuns:
    """Workspace methods over flows (mixed into Workspace)."""

    options: RunOptions
    forget_reads: Callable[[], None]

    # Relative flow and data paths go through find_path: a notebook's working directory depends
    # on how it was started (JupyterLab, papermill from the repository root, elsewhere).

    def _flow_options(self, data: str | Path | None, vars: dict[str, Any]) -> RunOptions:
        return replace(
            self.options,
            vars={name: str(value) for name, value in vars.items()},
            data=find_path(data) if data is not None else None,
        )

    def plan_table(
        self, flow_path: str | Path, data: str | Path | None = None, **vars: Any
    ) -> pd.DataFrame:
        """The requests a run would send, one row each (keys never shown); sends nothing.
        Relative paths: see `find_path`."""
        return flows.plan_table(find_path(flow_path), self._flow_options(data, vars))

    def run(
        self, flow_path: str | Path, data: str | Path | None = None, **vars: Any
    ) -> pd.DataFrame:
        """Run a flow against this workspace: one row per step result (step, kind, row,
        status, ms, error, ...); the RunSummary is in `.attrs["summary"]`. Relative paths: see
        `find_path`. Runs through `cio_flows.run_flow`: journaled like `cio-flows run` (the run id
        is `.attrs["summary"].run_id`), so `resume` can finish it."""
        try:
            return flows.run_table(find_path(flow_path), self._flow_options(data, vars))
        finally:
            self.forget_reads()  # even a failed run may have written some rows

    def resume(
        self, flow_path: str | Path, run_id: str, *, resend_unknown: bool = False
    ) -> pd.DataFrame:
        """Run again what did not succeed in run `run_id` (its vars and data from the journal),
        as `cio-flows run --resume` does; a table like `run`'s."""
        options = replace(self.options, resume=run_id, resend_unknown=resend_unknown)
        try:
            return flows.run_table(find_path(flow_path), options)
        finally:
            self.forget_reads()
