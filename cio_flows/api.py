"""The public functions the CLI, notebooks and tests call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .config import Credentials
from .engine import PlannedStep, PreparedRun, RunOptions, with_endpoint_root
from .events import Listener, RunSummary
from .loader import load_flow
from .transport import Transport


def prepare(flow_path: str | Path, options: RunOptions | None = None) -> PreparedRun:
    """Load and check a flow; raises FlowInputError (exit 2 material)."""
    return PreparedRun(load_flow(flow_path), options)


def validate_flow(flow_path: str | Path, options: RunOptions | None = None) -> PreparedRun:
    """Every check that needs no credentials and sends nothing."""
    run = prepare(flow_path, options)
    run.preflight_static()
    return run


def plan_flow(flow_path: str | Path, options: RunOptions | None = None) -> Iterator[PlannedStep]:
    run = validate_flow(flow_path, options)
    return run.plan()


def run_flow(
    flow_path: str | Path,
    options: RunOptions | None = None,
    listeners: list[Listener] = (),
) -> RunSummary:
    """Run a flow against the endpoints in options.environ (or os.environ)."""
    run = prepare(flow_path, options)
    run.preflight()
    return execute(run, listeners)


def execute(run: PreparedRun, listeners: list[Listener] = ()) -> RunSummary:
    """Run a prepared (and preflighted) flow."""
    with Transport(run.endpoints, run.credentials, run.options.transport) as transport:
        return run.execute(transport, list(listeners))


@contextmanager
def emulated(options: RunOptions | None = None, **emulator_args) -> Iterator[RunOptions]:
    """Start an in-process emulator and yield options pointing every family at it."""
    from .emulator import Credentials as EmulatorCredentials
    from .emulator import Emulator

    options = options or RunOptions()
    environ = options.environ
    creds = (
        EmulatorCredentials.from_env(environ)
        if environ is not None
        else EmulatorCredentials.from_env()
    )
    with Emulator(credentials=creds, **emulator_args) as emulator:
        pointed = with_endpoint_root(options, emulator.url)
        env = dict(pointed.environ)
        env.update(
            CUSTOMERIO_SITE_ID=creds.site_id,
            CUSTOMERIO_TRACK_TOKEN=creds.track_key,
            CUSTOMERIO_PIPELINES_KEY=creds.pipelines_key,
            CUSTOMERIO_APP_TOKEN=creds.app_key,
        )
        yield replace(pointed, environ=env)


def secrets_of(options: RunOptions) -> list[str]:
    environ = options.environ
    return (
        Credentials.from_env(environ) if environ is not None else Credentials.from_env()
    ).secrets()
