"""`cio-flows emulator`: the local Customer.io emulator in the foreground, with its limits and
faults from the command line."""

from __future__ import annotations

import sys

import click

from ..run.events import EXIT_INVALID
from ..wire.families import FAMILIES

FAMILY_NAMES = FAMILIES


def family_settings(values: tuple[str, ...], option: str) -> dict[str, float]:
    """`FAMILY=NUMBER` items (FAMILY may be `all`) as {family: number}."""
    settings: dict[str, float] = {}
    for item in values:
        family, sep, number = item.partition("=")
        families = FAMILY_NAMES if family == "all" else (family,)
        if not sep or family not in (*FAMILY_NAMES, "all"):
            raise click.BadParameter(
                f"expected FAMILY=NUMBER with FAMILY one of all, {', '.join(FAMILY_NAMES)};"
                f" found {item!r}",
                param_hint=option,
            )
        try:
            value = float(number)
        except ValueError:
            raise click.BadParameter(f"{number!r} is not a number", param_hint=option) from None
        settings.update(dict.fromkeys(families, value))
    return settings


def emulator_behaviour(limits_preset, limit, latency, error_rate, drop_rate):
    """Emulator limits and faults from the command line: a preset and per-family overrides."""
    limits: object = limits_preset
    if limit:
        limits = family_settings(limit, "--limit")
    faults: dict[str, dict[str, float]] = {}
    for option, key, values in (
        ("--latency", "latency", latency),
        ("--error-rate", "error_rate", error_rate),
        ("--drop-rate", "drop_rate", drop_rate),
    ):
        for family, value in family_settings(values, option).items():
            faults.setdefault(family, {})[key] = value
    return limits, faults or None


@click.command()
@click.option("--port", type=int, default=8710, show_default=True)
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
    help="Customer.io's documented rate limits (Track 100/s, Pipelines 1000/s, App 10/s).",
)
@click.option("--limit", multiple=True, metavar="FAMILY=PER_SECOND", help="A rate limit (429s).")
@click.option("--latency", multiple=True, metavar="FAMILY=SECONDS", help="Added to each answer.")
@click.option("--error-rate", multiple=True, metavar="FAMILY=SHARE", help="Share answered 500/503.")
@click.option(
    "--drop-rate", multiple=True, metavar="FAMILY=SHARE", help="Share of dropped connections."
)
def emulator(
    port: int,
    db,
    workspace,
    empty,
    demo_people,
    limits_preset,
    limit,
    latency,
    error_rate,
    drop_rate,
) -> None:
    """Run the local Customer.io emulator in the foreground (Ctrl-C to stop).

    FAMILY is track, pipelines, app or all; the workspace file can set the same limits and faults.
    """
    from ..emulator import serve

    limits, faults = emulator_behaviour(limits_preset, limit, latency, error_rate, drop_rate)
    kwargs = {"workspace": {} if empty else workspace} if (empty or workspace) else {}
    if demo_people is not None:
        if empty or workspace:
            message = "error: --demo-people cannot be combined with --workspace or --empty"
            click.echo(message, err=True)
            sys.exit(EXIT_INVALID)
        kwargs = {"workspace": {"demo": {"people": demo_people}}}
    try:
        serve(port=port, db_path=db, limits=limits, faults=faults, **kwargs)
    except OSError as exc:  # the port is taken, or not ours to bind
        click.echo(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)
    except ValueError as exc:  # a workspace file or setting the emulator cannot use
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
