"""`use`: a flow file's steps run in place of a step of another flow, in a scope of their own.

A `use` is expanded when the flow loads: the used file is loaded and checked on its own (its
vars are its defaults), and its steps join the using flow's step list, each keeping its own
place in the used file plus the `use` site (UsedLocation), and a key made of the using step's key
and its own (`steps.2/steps.0`), so journals and dedupe ids stay stable. Its `finally` steps run
before the using flow's own `finally` (the last use first), as nested try/finally would.

At run time each use gets a scope per row (ScopeContexts): the used flow's vars (`with` values
rendered in the using flow's context, the rest from their defaults) and its own `steps`, which
`save: NAME` on the `use` step makes readable as `steps.NAME`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import FlowInputError, FlowSchemaError, Location
from .jinja_env import HELPERS
from .model import Condition, Flow, Path_, SourceMap, Step, UsedLocation, UseSite
from .templating import Renderer, compile_value

# (inner site, outer site) ids -> the inner site rerooted under the outer one
ReRooted = dict[tuple[int, int], UseSite]

USE = "use"
USE_OPTIONS = ("name", "with", "save")


class LoadUsed(Protocol):
    """Loads and checks a used flow file (given the files using it, outermost first); `use`
    names files under `root` only."""

    @property
    def root(self) -> Path: ...

    def __call__(self, path: Path, using: tuple[Path, ...], /) -> Flow: ...


BuildStep = Callable[[dict[str, Any], str, int], Step]


def via(location: Location, site: Location) -> UsedLocation:
    """A used file's location, seen from the flow using it (one more `used at`)."""
    earlier = location.via if isinstance(location, UsedLocation) else ()
    return UsedLocation(location.file, location.line, location.column, (*earlier, site))


def relocated(exc: FlowInputError, site: Location) -> FlowInputError:
    """An error found in a used file, naming the using step too."""
    if exc.location is None:
        return exc
    clone = type(exc).__new__(type(exc))
    FlowInputError.__init__(
        clone,
        exc.reason,
        location=via(exc.location, site),
        step=exc.step,
        row=exc.row,
        expected=exc.expected,
        found=exc.found,
    )
    return clone


@dataclass
class _Expansion:
    steps: list[Step]
    finally_steps: list[Step]
    deferred: list[list[Step]]  # finally steps of the uses in `steps`, in use order
    values: dict[Path_, Location]
    keys: dict[Path_, Location]
    sites: ReRooted


def expand(
    path: Path,
    data: dict[str, Any],
    source: SourceMap,
    build_step: BuildStep,
    load_used: LoadUsed,
    chain: tuple[Path, ...],
) -> tuple[tuple[Step, ...], tuple[Step, ...], SourceMap]:
    """The flow's steps and finally steps with every `use` expanded, and the merged source map."""
    out = _Expansion([], [], [], dict(source.values), dict(source.keys), {})
    for section in ("steps", "finally"):
        target = out.steps if section == "steps" else out.finally_steps
        for index, raw in enumerate(data.get(section) or []):
            if USE not in raw:
                target.append(build_step(raw, section, index))
                continue
            used, site = _load_use(path, raw, section, index, source, load_used, chain)
            _merge_source(out, used.source, site)
            body = [_reroot(step, site, section, out.sites) for step in used.steps]
            cleanup = [_reroot(step, site, "finally", out.sites) for step in used.finally_steps]
            target.extend(body)
            if section == "steps":
                out.deferred.append(cleanup)
            else:
                target.extend(cleanup)
    deferred = [step for cleanup in reversed(out.deferred) for step in cleanup]
    merged = SourceMap(source.file, out.values, out.keys)
    return tuple(out.steps), tuple(deferred + out.finally_steps), merged


def _load_use(
    path: Path,
    raw: dict[str, Any],
    section: str,
    index: int,
    source: SourceMap,
    load_used: LoadUsed,
    chain: tuple[Path, ...],
) -> tuple[Flow, UseSite]:
    step_path = (section, index)
    here = source.locate(step_path)
    for option in raw:
        if option != USE and option not in USE_OPTIONS:
            raise FlowSchemaError(
                f"option '{option}' cannot go on a use step",
                location=source.locate((*step_path, option), key=True),
                expected="one of " + ", ".join(USE_OPTIONS),
                found=f"'{option}'",
            )
    save = raw.get("save")
    if isinstance(save, dict):
        raise FlowSchemaError(
            "a use step saves the used flow's saves: save takes a name only",
            location=source.locate((*step_path, "save")),
            expected="a name (then steps.<name>.<its save name>)",
            found="mapping",
        )
    file = Path(os.path.normpath(path.parent / raw[USE]))  # "common/x.yaml", not "a/../common"
    files = (*chain, path.resolve())
    if file.resolve() in files:
        cycle = " uses ".join(str(f) for f in (*files[files.index(file.resolve()) :], file))
        raise FlowSchemaError(
            f"a cycle of use: {cycle}",
            location=source.locate((*step_path, USE)),
            expected="a flow file that does not use this one, directly or not",
            found=str(file),
        )
    if not file.resolve().is_relative_to(load_used.root):  # symlinks followed: where it is
        raise FlowSchemaError(
            "the used file is outside the project",
            location=source.locate((*step_path, USE)),
            expected=f"a flow file under {load_used.root} (the project root: --root DIR)",
            found=str(file),
        )
    if not file.is_file():
        raise FlowSchemaError(
            "the used flow file does not exist",
            location=source.locate((*step_path, USE)),
            expected="a flow file, relative to this one",
            found=str(file),
        )
    try:
        used = load_used(file, files)
    except FlowInputError as exc:
        raise relocated(exc, here) from None
    if used.for_each is not None:
        raise FlowSchemaError(
            f"{file} has for_each: a used flow runs once per row of the flow using it",
            location=via(used.for_each.location, here),
            expected="a flow without for_each",
            found="for_each",
        )
    declared = [name for name, _ in used.vars]
    with_values = tuple((raw.get("with") or {}).items())
    for name, _ in with_values:
        if name not in declared:
            raise FlowSchemaError(
                f"with: '{name}' is not a var of {file} (its vars: {used.locate(('vars',))})",
                location=source.locate((*step_path, "with", name), key=True),
                expected="one of " + (", ".join(declared) or "(no vars declared)"),
                found=f"'{name}'",
            )
    saves = {step.save for step in used.all_steps if step.scope is None and step.save}
    saves |= {site.save for site in used.use_sites if site.save}
    site = UseSite(
        key=f"{section}.{index}",
        name=raw.get("name") or f"use {Path(raw[USE]).stem}",
        file=file,
        location=here,
        path=step_path,
        inner_root=(*step_path, USE),
        with_values=with_values,
        vars=used.vars,
        save=save,
        saves=frozenset(saves),
    )
    return used, site


def _merge_source(out: _Expansion, used: SourceMap, site: UseSite) -> None:
    """The used file's node positions under the `use` node: every step path stays valid."""
    for table, into in ((used.values, out.values), (used.keys, out.keys)):
        for node, location in table.items():
            if node:  # the used file's root stays the `use` value of this file
                into[(*site.inner_root, *node)] = via(location, site.location)


def _reroot(step: Step, site: UseSite, section: str, sites: ReRooted) -> Step:
    """A used flow's step as a step of the flow using it."""
    here = site.location

    def condition(value: Condition) -> Condition:
        return replace(value, location=via(value.location, here))

    wait = step.wait_until
    status = step.expect_status
    if status is not None:
        status = replace(status, location=via(status.location, here))
    return replace(
        step,
        name=f"{site.name} / {step.name}",
        section=section,
        location=via(step.location, here),
        when=None if step.when is None else condition(step.when),
        expect=tuple(condition(c) for c in step.expect),
        wait_until=None if wait is None else replace(wait, condition=condition(wait.condition)),
        expect_status=status,
        scope=_reroot_site(step.scope, site, sites),
        source_path=(*site.inner_root, *step.path),
        scoped_key=f"{site.key}/{step.key}",
    )


def _reroot_site(inner: UseSite | None, outer: UseSite, sites: ReRooted) -> UseSite:
    """A used flow's own use site, seen from the flow using it; one object per site."""
    if inner is None:
        return outer
    memo = sites.get((id(inner), id(outer)))
    if memo is not None:
        return memo
    rerooted = replace(
        inner,
        key=f"{outer.key}/{inner.key}",
        location=via(inner.location, outer.location),
        path=(*outer.inner_root, *inner.path),
        inner_root=(*outer.inner_root, *inner.inner_root),
        parent=_reroot_site(inner.parent, outer, sites),
    )
    sites[(id(inner), id(outer))] = rerooted
    return rerooted


class ScopeContexts:
    """The per-row contexts of used flows, made when their first step needs one.

    A scope sees `run`, `env` and `row`, the used flow's vars and its own `steps`; `with` values
    are rendered in the using flow's context then, so they may read its earlier saves.
    """

    def __init__(self, flow: Flow) -> None:
        self._with: dict[str, list[tuple[str, Renderer]]] = {}
        self._vars: dict[str, list[tuple[str, Renderer]]] = {}
        for step in flow.all_steps:
            site = step.scope
            while site is not None and site.key not in self._with:
                self._compile(flow, site)
                site = site.parent

    def _compile(self, flow: Flow, site: UseSite) -> None:
        def at(path: Path_) -> Callable[[Path_], Location]:
            return lambda inner: flow.locate((*path, *inner))

        self._with[site.key] = [
            (name, compile_value(value, at((*site.path, "with", name))))
            for name, value in site.with_values
        ]
        given = {name for name, _ in site.with_values}
        self._vars[site.key] = [
            (name, compile_value(value, at((*site.inner_root, "vars", name))))
            for name, value in site.vars
            if name not in given
        ]

    def context(
        self, site: UseSite | None, root: dict[str, Any], scopes: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The context a step of `site` renders in (`root` for the flow's own steps)."""
        if site is None:
            return root
        made = scopes.get(site.key)
        if made is not None:
            return made
        outer = self.context(site.parent, root, scopes)
        context = {name: outer[name] for name in ("run", "env", "row", HELPERS) if name in outer}
        context["steps"] = {}
        for name, render in self._with[site.key]:
            context[name] = render(outer)
        for name, render in self._vars[site.key]:  # in order: later ones may use earlier ones
            context[name] = render(context)
        scopes[site.key] = context
        if site.save:
            outer["steps"][site.save] = context["steps"]  # filled as the used steps save
        return context
