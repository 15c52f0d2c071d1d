"""cio-flows: declarative YAML flows against Customer.io, or its local emulator."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    CioFlowsError,
    CredentialsError,
    DataFileError,
    FlowInputError,
    FlowSchemaError,
    FlowSyntaxError,
    JournalError,
    Location,
    PayloadError,
    TemplateError,
    TransportError,
)

if TYPE_CHECKING:
    from .api import emulated, execute, plan_flow, prepare, recent_runs, run_flow, validate_flow
    from .flow.loader import load_flow
    from .run.events import RunSummary, StepFinished
    from .run.plan import PlannedFailure, PlannedRequest
    from .run.prepare import PreparedRun, RunOptions

# The library's entry points load on first use: `cio-flows --help` and `validate` import the
# package (cio_flows.cli is inside it) and need none of the run machinery (requests, the journal).
_LAZY = {
    **dict.fromkeys(
        (
            "emulated",
            "execute",
            "plan_flow",
            "prepare",
            "recent_runs",
            "run_flow",
            "validate_flow",
        ),
        "api",
    ),
    "load_flow": "flow.loader",
    "RunSummary": "run.events",
    "StepFinished": "run.events",
    "PlannedFailure": "run.plan",
    "PlannedRequest": "run.plan",
    "PreparedRun": "run.prepare",
    "RunOptions": "run.prepare",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext cio_flows`: the %%cio_flow and %%cio_plan cell magics (needs the notebooks
    extra)."""
    from .analysis.magics import load

    load(ipython)  # type: ignore[arg-type]


__all__ = [
    "CioFlowsError",
    "CredentialsError",
    "DataFileError",
    "FlowInputError",
    "FlowSchemaError",
    "FlowSyntaxError",
    "JournalError",
    "Location",
    "PayloadError",
    "PlannedFailure",
    "PlannedRequest",
    "PreparedRun",
    "RunOptions",
    "RunSummary",
    "StepFinished",
    "TemplateError",
    "TransportError",
    "emulated",
    "execute",
    "load_flow",
    "plan_flow",
    "prepare",
    "recent_runs",
    "run_flow",
    "validate_flow",
]
