"""The public functions the CLI, notebooks and tests call."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .flow.loader import load_flow
from .redact import environ_secrets
from .run.events import Listener, RunSummary
from .run.executor import Executor, InFlightMarker, PreviousLookup
from .run.prepare import PlannedStep, PreparedRun, RunOptions, with_endpoint_root
from .wire.config import Credentials
from .wire.transport import Transport


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


def execute(
    run: PreparedRun,
    listeners: list[Listener] = (),
    *,
    previous: PreviousLookup | None = None,
    resend_unknown: bool = False,
    in_flight: InFlightMarker | None = None,
) -> RunSummary:
    """Run a prepared (and preflighted) flow.

    previous: on resume, each row's outcomes from the earlier attempt (steps that succeeded are
    not sent again; sends whose outcome is unknown are not resent unless resend_unknown).
    in_flight: called (row key, step key) before each send that is not safe to repeat, to record
    it durably first (Journal.in_flight_marker).
    """
    with Transport(run.endpoints, run.credentials, run.options.transport) as transport:
        executor = Executor(
            run,
            transport,
            list(listeners),
            workers=run.options.workers,
            batch=run.options.batch,
            previous=previous,
            resend_unknown=resend_unknown,
            in_flight=in_flight,
        )
        return executor.execute()


@contextmanager
def emulated(options: RunOptions | None = None, **emulator_args) -> Iterator[RunOptions]:
    """Start an in-process emulator and yield options pointing every family at it.

    The emulator accepts the keys in the CUSTOMERIO_* variables when set, else its demo keys.
    """
    from .emulator import Credentials as EmulatorCredentials
    from .emulator import Emulator

    options = options or RunOptions()
    environ = os.environ if options.environ is None else options.environ
    credentials = EmulatorCredentials.from_env(environ)
    with Emulator(credentials=credentials, **emulator_args) as emulator:
        yield options_for_emulator(emulator, options)


def options_for_emulator(emulator, options: RunOptions | None = None) -> RunOptions:
    """Options whose endpoints and keys are those of a running emulator."""
    options = with_endpoint_root(options or RunOptions(), emulator.url)
    creds = emulator.credentials
    environ = dict(options.environ)
    environ.update(
        CUSTOMERIO_SITE_ID=creds.site_id,
        CUSTOMERIO_TRACK_TOKEN=creds.track_key,
        CUSTOMERIO_PIPELINES_KEY=creds.pipelines_key,
        CUSTOMERIO_APP_TOKEN=creds.app_key,
    )
    return replace(options, environ=environ)


def secrets_of(options: RunOptions) -> list[str]:
    """What outputs mask: the keys as the transport sends them, and the value of every variable
    whose name says KEY, TOKEN, SECRET or PASSWORD."""
    environ = os.environ if options.environ is None else options.environ
    return Credentials.from_env(environ).secrets() + environ_secrets(environ)
