"""What a run was made of (flow path, flow hash, data fingerprint, one hash per step), stored in
the journal so `--resume RUN_ID` can tell that the flow and data are still the same.

Resuming with another flow or data file would skip the new flow's steps wherever the old run
succeeded at the same step key, and reuse its messageIds (Customer.io then drops the new events).
A mismatch is refused, naming what changed; `--resume-changed` accepts it, and every step whose
content differs from the stored one gets a new key (`steps.0~<hash>`), so it is sent again under
fresh dedupe ids while unchanged steps keep theirs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import FlowInputError
from ..flow.model import Flow, Step

_REKEY_MARK = "~"  # `steps.0~3f2a9c1b0d4e`: a changed step's key on a changed resume


@dataclass(frozen=True)
class RunInputs:
    flow_path: str
    flow_hash: str
    data_path: str | None
    data_hash: str | None
    steps: dict[str, str]  # step key -> hash of what the step does
    names: dict[str, str] = field(default_factory=dict)  # step key -> name, for `runs show`

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunInputs:
        stored = json.loads(text)
        return cls(
            flow_path=stored["flow_path"],
            flow_hash=stored["flow_hash"],
            data_path=stored.get("data_path"),
            data_hash=stored.get("data_hash"),
            steps=dict(stored.get("steps") or {}),
            names=dict(stored.get("names") or {}),
        )


def run_inputs(flow: Flow, flow_path: str | Path, data_path: Path | None) -> RunInputs:
    """The fingerprints of a run about to start (steps under their keys, re-keyed or not)."""
    steps = {step.key: step_hash(step) for step in flow.all_steps}
    return RunInputs(
        flow_path=str(Path(flow_path).resolve()),
        flow_hash=flow_hash(flow),
        data_path=None if data_path is None else str(Path(data_path).resolve()),
        data_hash=None if data_path is None else file_hash(Path(data_path)),
        steps=steps,
        names={step.key: step.name for step in flow.all_steps},
    )


def step_hash(step: Step) -> str:
    """What the step sends and checks, without where it is written or what it is called: moving
    a step down a line or renaming it is no change; editing its payload, conditions or options is."""
    scope = step.scope
    described = {
        "kind": step.kind,
        "payload": step.payload,
        "save": step.save,
        "save_value": step.save_value,
        "when": None if step.when is None else step.when.expression,
        "expect": [condition.expression for condition in step.expect],
        "wait_until": None
        if step.wait_until is None
        else [
            step.wait_until.condition.expression,
            step.wait_until.timeout,
            step.wait_until.interval,
            step.wait_until.max_interval,
        ],
        "loop": step.loop,
        "once": step.once,
        "expect_status": None if step.expect_status is None else step.expect_status.text,
        "validate": step.validate,
        "use": None if scope is None else [list(scope.with_values), list(scope.vars), scope.save],
    }
    return _digest(json.dumps(described, sort_keys=True, default=str))


def flow_hash(flow: Flow) -> str:
    """The flow as it runs: vars, rows' key and each step's hash in order (comments and
    formatting do not count)."""
    described = {
        "vars": [list(pair) for pair in flow.vars],
        "for_each": None
        if flow.for_each is None
        else [flow.for_each.file, flow.for_each.key, flow.for_each.http],
        "steps": [[step.section, step_hash(step)] for step in flow.all_steps],
    }
    return _digest(json.dumps(described, sort_keys=True, default=str))


def file_hash(path: Path) -> str | None:
    """sha256 of a data file's bytes (None if it cannot be read: loading it reports why)."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def changes(stored: RunInputs, current: RunInputs, flow: Flow) -> list[str]:
    """What differs between a stored run and the flow and data given now, in words."""
    found: list[str] = []
    if stored.flow_path != current.flow_path:
        found.append(f"the flow file is {current.flow_path}, not {stored.flow_path}")
    if stored.flow_hash != current.flow_hash:
        keys = stored_keys(flow, stored.steps)
        changed = [step.key for step in flow.all_steps if keys[step.key] is None]
        removed = sorted(set(stored.steps) - set(keys.values()))
        detail = []
        if changed:
            detail.append("new or changed steps " + ", ".join(changed))
        if removed:
            detail.append("steps no longer there " + ", ".join(removed))
        if not detail:
            detail.append("steps moved, or vars or for_each changed")
        found.append(f"the flow changed ({'; '.join(detail)})")
    if stored.data_path != current.data_path:
        found.append(f"the data file is {current.data_path}, not {stored.data_path}")
    elif stored.data_hash != current.data_hash:
        found.append(f"the data file {current.data_path} changed since that run")
    return found


def refuse_changes(run_id: str, found: list[str]) -> FlowInputError:
    return FlowInputError(
        f"cannot resume run '{run_id}': " + "; ".join(found),
        expected=f"the flow and data of run '{run_id}'",
        found="a different flow or data (--resume-changed resumes anyway: new and changed steps"
        " run under new keys)",
    )


def rekeyed(flow: Flow, stored_steps: dict[str, str]) -> Flow:
    """The flow with each step under the key the stored run knows it by; a step the run does
    not know (new, or changed) gets a key of its own, `<key>~<hash>`, so its outcomes and dedupe
    ids start afresh."""
    keys = stored_keys(flow, stored_steps)

    def rekey(step: Step) -> Step:
        key = keys[step.key] or f"{step.key}{_REKEY_MARK}{step_hash(step)[:12]}"
        return step if key == step.key else replace(step, scoped_key=key)

    return replace(
        flow,
        steps=tuple(rekey(step) for step in flow.steps),
        finally_steps=tuple(rekey(step) for step in flow.finally_steps),
    )


def stored_keys(flow: Flow, stored_steps: dict[str, str]) -> dict[str, str | None]:
    """For each step (by its own key), the stored step it is: the one under its key, or under
    the key a changed resume gave it, else an unclaimed one doing the same (a step inserted
    above moves the others down); None for a step the stored run does not have."""
    digests = {step.key: step_hash(step) for step in flow.all_steps}
    found: dict[str, str | None] = {}
    for key, digest in digests.items():
        for candidate in (key, f"{key}{_REKEY_MARK}{digest[:12]}"):
            if stored_steps.get(candidate) == digest:
                found[key] = candidate
                break
    claimed = set(found.values())
    for key, digest in digests.items():
        if key in found:
            continue
        same = [k for k, d in stored_steps.items() if d == digest and k not in claimed]
        found[key] = same[0] if same else None
        claimed.add(found[key])
    return found


def stored_for(value: str | None) -> RunInputs | None:
    """RunInputs from the journal's column (None: a run recorded before inputs were kept)."""
    return None if value is None else RunInputs.from_json(value)
