"""The emulator's one command line: `cio-flows emulator` and `python -m cio_flows.emulator`.

Every setting is checked before anything listens: a bad port, database, workspace, limit or
fault is one line naming it and exit 2 (bad input, as everywhere in cio-flows), never a
traceback.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from .config import BUCKETS, FAMILIES, Faults, RateLimit

EXIT_INVALID = 2  # cio-flows' exit status for bad input (the emulator stands apart from run/)

# (option, Faults field, the Faults it stands for: built to check the value)
_FAULT_OPTIONS: tuple[tuple[str, str, Callable[[float], Faults]], ...] = (
    ("--latency", "latency", lambda value: Faults(latency=value)),
    ("--error-rate", "error_rate", lambda value: Faults(error_rate=value)),
    ("--drop-rate", "drop_rate", lambda value: Faults(drop_rate=value)),
)


def family_settings(
    values: tuple[str, ...], option: str, known: tuple[str, ...] = FAMILIES
) -> dict[str, float]:
    """`FAMILY=NUMBER` items (FAMILY may be `all`: every API family) as {family: number}."""
    settings: dict[str, float] = {}
    for item in values:
        family, sep, number = item.partition("=")
        families = FAMILIES if family == "all" else (family,)
        if not sep or family not in (*known, "all"):
            raise click.BadParameter(
                f"expected FAMILY=NUMBER with FAMILY one of all, {', '.join(known)};"
                f" found {item!r}",
                param_hint=option,
            )
        try:
            value = float(number)
        except ValueError:
            raise click.BadParameter(f"{number!r} is not a number", param_hint=option) from None
        settings.update(dict.fromkeys(families, value))
    return settings


def emulator_behaviour(
    limits_preset: str | None,
    limit: tuple[str, ...],
    latency: tuple[str, ...],
    error_rate: tuple[str, ...],
    drop_rate: tuple[str, ...],
) -> tuple[str | dict[str, float] | None, dict[str, dict[str, float]] | None]:
    """Emulator limits and faults from the command line: a preset and per-family overrides.

    Each value is checked as the emulator's settings check it (RateLimit, Faults), so a
    negative limit, an endless latency or a share that is not in 0..1 names its option.
    """
    limits: str | dict[str, float] | None = limits_preset
    if limit:
        limits = family_settings(limit, "--limit", BUCKETS)
        for value in limits.values():
            _checked(partial(RateLimit, value), "--limit")
    faults: dict[str, dict[str, float]] = {}
    given = (latency, error_rate, drop_rate)
    for (option, key, faults_of), values in zip(_FAULT_OPTIONS, given, strict=True):
        for family, value in family_settings(values, option).items():
            _checked(partial(faults_of, value), option)
            faults.setdefault(family, {})[key] = value
    return limits, faults or None


def _checked(build: Callable[[], object], option: str) -> None:
    try:
        build()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _webhook_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(
            f"expected an http(s) URL, found {value!r}", param_hint="--webhook"
        )
    return value


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_INVALID)


@click.command(name="emulator")
@click.option("--port", type=click.IntRange(0, 65535), default=8710, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite file (default: in memory).")
@click.option("--workspace", type=click.Path(dir_okay=False, exists=True), help="Workspace YAML.")
@click.option("--empty", is_flag=True, help="Start with no people, segments or templates.")
@click.option(
    "--demo-people",
    type=click.IntRange(1, 5_000_000),
    metavar="N",
    help="A generated demo workspace of N people, with segments and a message history.",
)
@click.option(
    "--limits",
    "limits_preset",
    type=click.Choice(["customerio"]),
    help="Customer.io's documented rate limits (Track 100/s, Pipelines 3,000 per 3 s,"
    " transactional sends 100/s, broadcast triggers 1 per 10 s, the rest of the App API 10/s).",
)
@click.option(
    "--limit",
    multiple=True,
    metavar="FAMILY=PER_SECOND",
    help="A rate limit (429s); FAMILY may also be transactional (sends) or triggers.",
)
@click.option("--latency", multiple=True, metavar="FAMILY=SECONDS", help="Added to each answer.")
@click.option("--error-rate", multiple=True, metavar="FAMILY=SHARE", help="Share answered 500/503.")
@click.option(
    "--drop-rate", multiple=True, metavar="FAMILY=SHARE", help="Share of dropped connections."
)
@click.option(
    "--webhook",
    "webhooks",
    multiple=True,
    metavar="URL",
    callback=lambda ctx, param, values: tuple(_webhook_url(v) for v in values),
    help="Forward every reporting webhook event (message metrics, subscribes) to a local handler,"
    " signed as Customer.io signs them (a reporting webhook created at start).",
)
def emulator(
    port: int,
    host: str,
    db: str | None,
    workspace: str | None,
    empty: bool,
    demo_people: int | None,
    limits_preset: str | None,
    limit: tuple[str, ...],
    latency: tuple[str, ...],
    error_rate: tuple[str, ...],
    drop_rate: tuple[str, ...],
    webhooks: tuple[str, ...],
) -> None:
    """Run the local Customer.io emulator in the foreground (Ctrl-C to stop).

    FAMILY is track, pipelines, app or all; the workspace file can set the same limits and faults.
    """
    from .server import serve  # starlette and uvicorn: loaded once the settings are good

    limits, faults = emulator_behaviour(limits_preset, limit, latency, error_rate, drop_rate)
    chosen: str | dict[str, Any] | None = {} if empty else workspace
    if demo_people is not None:
        if empty or workspace:
            _fail("--demo-people cannot be combined with --workspace or --empty")
        chosen = {"demo": {"people": demo_people}}
    try:
        serve(
            port=port,
            db_path=db,
            workspace=chosen,
            limits=limits,
            faults=faults,
            host=host,
            webhooks=webhooks,
        )
    except sqlite3.Error as exc:  # the --db file: not a database, or not ours to open
        if db is None:
            raise
        _fail(f"cannot use --db {db}: {exc}")
    except OSError as exc:  # the port is taken, or not ours to bind
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except ValueError as exc:  # a workspace file or setting the emulator cannot use
        _fail(f"workspace {workspace}: {exc}" if workspace else str(exc))


def main(argv: list[str] | None = None) -> None:
    """`python -m cio_flows.emulator`: the same command under its module name."""
    emulator.main(argv, prog_name="python -m cio_flows.emulator")
