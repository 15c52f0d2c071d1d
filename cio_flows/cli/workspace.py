"""`cio-flows workspace pull`: a workspace file the emulator starts from, read from a workspace
(Customer.io, or an emulator at CUSTOMERIO_APP_URL) with the App key."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import api, pull
from ..errors import FlowInputError, TransportError
from ..run.events import EXIT_INVALID, EXIT_REFUSED, EXIT_UNAVAILABLE, REFUSED_STATUSES
from ..run.prepare import RunOptions
from .options import env_file_option, region_option


@click.group()
def workspace() -> None:
    """Workspace files for the emulator."""


@workspace.command("pull")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the workspace file here (default: standard output).",
)
@click.option(
    "--people",
    type=click.IntRange(0, 100_000),
    default=0,
    show_default=True,
    metavar="N",
    help="Also pull N people with their attributes.",
)
@region_option
@env_file_option
def pull_command(out: Path | None, people: int, region: str | None, env_file) -> None:
    """Read transactional messages, segments, campaigns, broadcasts and newsletters with the
    App key (CUSTOMERIO_APP_TOKEN; CUSTOMERIO_APP_URL for an emulator) and write a workspace
    file; what the App API does not show is said in comments."""
    environ = api.environ_with_files(env_file) if env_file else dict(os.environ)
    redact = api.redactor(RunOptions(environ=environ))
    if out is not None:  # its folder made (as --report's), or the error found before any read
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            click.echo(f"error: --out {out}: cannot write it: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_INVALID)
    try:
        pulled = pull.pull(environ, people=people, region=region)
    except FlowInputError as exc:
        click.echo(redact(f"error: {exc.describe()}"), err=True)
        sys.exit(EXIT_INVALID)
    except TransportError as exc:
        click.echo(redact(f"error: reading the workspace failed: {exc}"), err=True)
        sys.exit(EXIT_REFUSED if exc.status in REFUSED_STATUSES else EXIT_UNAVAILABLE)
    text = pulled.to_yaml()
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: --out {out}: cannot write it: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)
    counts = ", ".join(
        f"{len(getattr(pulled, s))} {s}"
        for s in ("templates", "segments", "campaigns", "broadcasts", "people")
    )
    click.echo(f"wrote {out}: {counts}", err=True)
