"""cio-flows: declarative YAML flows against Customer.io, or its local emulator."""

from .api import emulated, execute, plan_flow, prepare, recent_runs, run_flow, validate_flow
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
from .flow.loader import load_flow
from .run.events import RunSummary, StepFinished
from .run.plan import PlannedFailure, PlannedRequest
from .run.prepare import PreparedRun, RunOptions


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
