"""`cio-flows serve FLOW`: run FLOW once for each webhook delivery POSTed to it."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import click

from .. import api
from ..errors import FlowInputError
from ..run.events import EXIT_INVALID
from .options import (
    emulator_option,
    env_file_option,
    fail_invalid,
    flow_argument,
    region_option,
    run_options,
    var_option,
)


@click.command()
@flow_argument
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--verify",
    type=click.Choice(["svix"]),
    help="Check each delivery's signature (Clerk and other Svix senders); refuse the rest.",
)
@click.option(
    "--secret-env",
    default="WEBHOOK_SECRET",
    show_default=True,
    metavar="NAME",
    help="The environment variable holding the signing secret (whsec_...).",
)
@region_option
@var_option
@env_file_option
@emulator_option
def serve(flow: Path, port, host, verify, secret_env, region, var, env_file, emulator) -> None:
    """Answer POSTed JSON bodies by running FLOW with each as its `row` (headers as
    `request.headers`). 2xx only after the flow's steps succeed, so the sender retries a
    failure; a redelivered delivery (same svix-id) answers 200 and sends nothing again."""
    import uvicorn

    from ..emulator.server import listening_socket
    from ..serve.app import make_app
    from ..serve.deliveries import DeliveryRunner
    from ..serve.svix import secret_key

    options = run_options(region, var, None, env_file)
    environ = dict(os.environ if options.environ is None else options.environ)
    redact = api.redactor(options)
    key = None
    if verify == "svix":
        secret = environ.get(secret_env, "")
        if not secret:
            _refuse(f"--verify svix needs the signing secret in ${secret_env} (whsec_...)")
        try:
            key = secret_key(secret)
        except ValueError as exc:
            _refuse(f"${secret_env}: {exc}")
    with ExitStack() as stack:
        try:
            if emulator:
                options = stack.enter_context(api.emulated(options))
                click.echo(f"emulator: {_emulator_url(options)}", err=True)
            run = api.validate_flow(flow, replace(options, read_sources=False))
            run.check_credentials()
            runner = DeliveryRunner(flow, options)
        except FlowInputError as exc:
            fail_invalid(exc, redact)
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            _refuse(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        app = make_app(runner, key, lambda line: click.echo(redact(line), err=True))
        sock.listen(128)  # deliveries queue until uvicorn accepts: the address works once printed
        address = f"http://{host}:{sock.getsockname()[1]}/"
        checked = " (svix signatures checked)" if key else ""
        click.echo(f"serving {flow} at {address}{checked}; Ctrl-C stops", err=True)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
        click.echo("stopped", err=True)


def _emulator_url(options) -> str:
    environ = options.environ or {}
    return str(environ.get("CUSTOMERIO_APP_URL", "")).removesuffix("/v1")


def _refuse(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_INVALID)
