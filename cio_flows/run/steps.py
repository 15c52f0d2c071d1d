"""One step for one row: the pipeline the per-row and the batched paths share.

`settle_early` decides what needs no request (skip after a failure, replay on resume, a send
settled from Customer.io on resume, `when`, `once`);
`send` runs a step alone (render, validate, send, poll `wait_until`); `settle` saves and checks
`expect` on an answer; `result` and `failed` build every StepFinished and its Failure.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import (
    CredentialsError,
    DataFileError,
    FlowInputError,
    Outcome,
    PayloadError,
    StepFailure,
    TemplateError,
    TransportError,
)
from ..flow.conditions import explain, holds
from ..flow.model import ExpectStatus, Step
from ..flow.templating import evaluate_condition, render_string
from ..wire import kinds
from ..wire.kinds import Request, Response
from ..wire.protocol import Transport
from .changed import RequestHasher
from .events import (
    CREDENTIALS,
    DATA,
    EXPECTATION,
    FAILED,
    HTTP,
    INPUT,
    NOT_RESENT,
    OK,
    PAYLOAD,
    SKIPPED,
    TEMPLATE,
    TRANSPORT,
    UNKNOWN,
    WAIT_TIMEOUT,
    Failure,
    FailureKind,
    Status,
    StepFinished,
)
from .once import OnceBook
from .prepare import PreparedRun
from .rows import Row
from .settle import send_facts


@dataclass(frozen=True)
class PreviousOutcome:
    """What a step did in an earlier attempt of the same run (from the journal, on resume).

    Besides the journal's statuses: SETTLED_FOUND, an unknown send found in Customer.io
    (`result` its rebuilt answer, `reason` how it was settled), and SETTLED_ABSENT, one not
    found there after the grace period, sent again.
    """

    status: str
    result: Any = None
    reason: str | None = None


class EarlierOutcome(Protocol):
    """What resume reads of an earlier attempt: a PreviousOutcome or the journal's Outcome."""

    @property
    def status(self) -> str: ...

    @property
    def result(self) -> Any: ...


# row_key -> {step_key: its earlier outcome}
PreviousLookup = Callable[[str], Mapping[str, EarlierOutcome]]
# (row_key, step_key, facts): durably record that a send that is not safe to repeat is about to
# leave, with what a resume needs to look it up in Customer.io (settle.send_facts)
InFlightMarker = Callable[[str, str, "dict[str, Any] | None"], None]

SETTLED_FOUND, SETTLED_ABSENT = "settled_found", "settled_absent"

NOT_RESENT_ERROR = "outcome unknown in an earlier attempt: not resent (use --resend-unknown)"


@dataclass
class RowState:
    """One row on its way through the steps: its context (saves land here) and whether it failed."""

    row: Row | None
    row_key: str
    context: dict[str, Any]
    before: Mapping[str, EarlierOutcome]  # the earlier attempt's outcomes, on resume
    failed: bool = False
    scopes: dict[str, dict[str, Any]] = field(default_factory=dict)  # used flows' contexts
    once_keys: dict[str, str] = field(default_factory=dict)  # step key -> its claimed once key
    request_hashes: dict[str, int] = field(default_factory=dict)  # step key -> rendered's hash

    @property
    def number(self) -> int | None:
        return self.row.number if self.row else None


_INPUT_KINDS = (
    (PayloadError, PAYLOAD),
    (TemplateError, TEMPLATE),
    (DataFileError, DATA),
    (CredentialsError, CREDENTIALS),
)


def failure_of(exc: Exception, step: Step | None = None, row: int | None = None) -> Failure:
    """The Failure an exception stands for; its message names the step and row when given."""
    if isinstance(exc, FlowInputError):
        named = exc.with_context(step=step.name if step else None, row=row)
        kind = next((k for cls, k in _INPUT_KINDS if isinstance(exc, cls)), INPUT)
        return Failure(
            kind,
            named.describe(),
            named.location,
            named.step,
            named.row,
            named.expected,
            named.found,
        )
    where = step.location if step else None
    name = step.name if step else None
    if isinstance(exc, StepFailure):
        location = exc.location or where
        kind = FailureKind(exc.kind)  # expectation or wait_timeout
        return Failure(kind, str(exc), location, name, row, exc.expected, exc.found)
    if isinstance(exc, TransportError):
        kind = HTTP if exc.status is not None else TRANSPORT
        if exc.outcome == Outcome.UNKNOWN:
            message = f"{exc} (outcome unknown: not resent)"
            return Failure(
                kind, message, where, name, row, outcome=Outcome.UNKNOWN, status=exc.status
            )
        return Failure(kind, str(exc), where, name, row, status=exc.status)
    raise TypeError(f"not a step failure: {exc!r}")


class StepPipeline:
    """Runs and settles one step of one row; shared by the per-row and the batched paths."""

    def __init__(
        self,
        run: PreparedRun,
        transport: Transport,
        *,
        resend_unknown: bool = False,
        in_flight: InFlightMarker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        once: OnceBook | None = None,
    ) -> None:
        self.run = run
        self.transport = transport
        self.resend_unknown = resend_unknown
        self.in_flight = in_flight
        self.sleep = sleep
        self.once = once
        # The journal keeps each (row, step) request hash, taken from what is rendered here.
        keep = run.keep_request_hashes and run.data is not None
        self.hashes = RequestHasher(run) if keep else None

    # --- results ----------------------------------------------------------------------------

    def result(
        self,
        step: Step,
        state: RowState,
        status: Status,
        elapsed: float = 0.0,
        attempts: int = 0,
        *,
        failure: Failure | None = None,
        detail: Any = None,
        saved: Any = None,
    ) -> StepFinished:
        """The one place a StepFinished is made: `error` is always the failure's message.

        A step that claimed a `once` key carries it when it succeeded (the journal records
        it), and gives the claim back otherwise."""
        error = failure.message if failure is not None else None
        once_key = state.once_keys.pop(step.key, None) if state.once_keys else None
        if once_key is not None and status != OK and self.once is not None:
            self.once.release(once_key)
        request_hash = None
        if self.hashes is not None and state.row is not None:
            request_hash = state.request_hashes.pop(step.key, None)
            if request_hash is None and not _replayed(state, step, status):
                request_hash = self.hashes.on_the_side(step, state.row)  # not rendered: rare
        return StepFinished(
            step,
            state.number,
            state.row_key,
            status,
            elapsed,
            attempts,
            error,
            detail,
            saved,
            failure,
            once_key if status == OK else None,
            request_hash,
        )

    def failed(
        self, step: Step, state: RowState, exc: Exception, elapsed: float = 0.0, attempts: int = 0
    ) -> StepFinished:
        """A failed (or, for a send that may have arrived, unknown) step, from its exception."""
        failure = failure_of(exc, step, state.number)
        status = UNKNOWN if failure.outcome == Outcome.UNKNOWN else FAILED
        return self.result(step, state, status, elapsed, attempts, failure=failure)

    def failed_with(
        self,
        step: Step,
        state: RowState,
        kind: FailureKind,
        message: str,
        elapsed: float = 0.0,
        attempts: int = 0,
        **facts: Any,
    ) -> StepFinished:
        """A failed step whose failure is not an exception (a batch item refused, too large)."""
        failure = Failure(kind, message, step.location, step.name, state.number, **facts)
        return self.result(step, state, FAILED, elapsed, attempts, failure=failure)

    # --- deciding without sending -----------------------------------------------------------

    def settle_early(self, step: Step, state: RowState) -> StepFinished | None:
        """The outcome of a step that sends nothing (skipped, replayed, `when` false), else None."""
        if state.failed and step.section == "steps":
            return self.result(step, state, SKIPPED)
        previous = state.before.get(step.key)
        if previous is not None and previous.status == OK:
            if step.save:
                try:
                    self.context(step, state)["steps"][step.save] = previous.result
                except FlowInputError as exc:
                    return self.failed(step, state, exc)
            return self.result(step, state, OK, detail="done before")
        if previous is not None and previous.status == SETTLED_FOUND:
            return self._settled(step, state, previous)
        if previous is not None and previous.status == UNKNOWN and not self.resend_unknown:
            failure = Failure(
                NOT_RESENT,
                NOT_RESENT_ERROR,
                step.location,
                step.name,
                state.number,
                outcome=Outcome.UNKNOWN,
            )
            return self.result(step, state, UNKNOWN, failure=failure)
        try:
            if step.when is not None and not holds(step.when, self.context(step, state)):
                return self.result(step, state, SKIPPED, detail="when is false")
            return self._once(step, state)
        except FlowInputError as exc:
            return self.failed(step, state, exc)

    def _once(self, step: Step, state: RowState) -> StepFinished | None:
        """Skipped when its `once` key is done (any run with this journal); else claimed."""
        if step.once is None or self.once is None:
            return None
        key = self.once_key(step, state)
        done_by = self.once.claim(key)
        if done_by is not None:
            return self.result(step, state, SKIPPED, detail=f"done once already (key {key})")
        state.once_keys[step.key] = key
        return None

    def once_key(self, step: Step, state: RowState) -> str:
        """The step's rendered `once` key for this row."""
        assert step.once is not None
        key = render_string(step.once, self.context(step, state), step.once_location)
        return str(key)

    def _settled(self, step: Step, state: RowState, previous: EarlierOutcome) -> StepFinished:
        """An unknown send found in Customer.io: ok, saved and checked as if it had answered."""
        if step.once is not None and self.once is not None:
            # The send happened: a key that does not render is simply not recorded.
            with contextlib.suppress(FlowInputError):
                state.once_keys[step.key] = self.once_key(step, state)
        how = getattr(previous, "reason", None) or "found in Customer.io"
        return self.settle(step, state, previous.result, 0.0, 0, f"settled: {how}")

    # --- sending one step alone -------------------------------------------------------------

    def context(self, step: Step, state: RowState) -> dict[str, Any]:
        """The context the step renders in: the row's, or its used flow's scope."""
        return self.run.step_context(step, state.context, state.scopes)

    def render(self, step: Step, state: RowState, context: dict[str, Any]) -> dict[str, Any]:
        """The step's payload for the row, validated; when the journal keeps request hashes,
        the hash of the payload as rendered waits in `state` for the step's outcome."""
        hashes = self.hashes
        if hashes is None or not hashes.renders(step):
            return self.run.render(step, context, state.row)

        def seen(payload: Any) -> None:
            state.request_hashes[step.key] = hashes.of_payload(step, payload)

        return self.run.render(step, context, state.row, seen)

    def run_step(self, step: Step, state: RowState) -> StepFinished:
        """Everything for one step of one row: settle early, or send and settle."""
        return self.settle_early(step, state) or self.send(step, state)

    def send(self, step: Step, state: RowState) -> StepFinished:
        """Render, send (each loop item), poll `wait_until`, then save and check `expect`."""
        started = time.monotonic()
        expected = step.expect_status
        sender = CountingSend(self.transport, self._marker(state.row_key, step), expected)
        try:
            result = self._perform(step, state, sender)
            if expected is not None and not expected.accepts_success:
                raise _unexpected_success(expected, sender.status)
        except TransportError as exc:
            if expected is None or exc.status not in expected:
                return self.failed(step, state, exc, time.monotonic() - started, sender.attempts)
            result = exc.body  # the refusal the step expects is its answer
        except (FlowInputError, StepFailure) as exc:
            return self.failed(step, state, exc, time.monotonic() - started, sender.attempts)
        elapsed = time.monotonic() - started
        detail = f"HTTP {sender.status}" if expected else summarize(step, result)
        return self.settle(step, state, result, elapsed, sender.attempts, detail)

    def settle(
        self, step: Step, state: RowState, result: Any, elapsed: float, attempts: int, detail: Any
    ) -> StepFinished:
        """Save and check expectations for a step whose request succeeded."""
        try:
            context = self.context(step, state)
            self._save(step, context, result)
            self._check_expectations(step, context, result)
        except (FlowInputError, StepFailure) as exc:
            return self.failed(step, state, exc, elapsed, attempts)
        saved = context["steps"].get(step.save) if step.save else None
        return self.result(step, state, OK, elapsed, attempts, detail=detail, saved=saved)

    def _marker(self, row_key: str, step: Step) -> Callable[[Request], None] | None:
        if self.in_flight is None:
            return None
        mark = self.in_flight
        return lambda request: mark(row_key, step.key, send_facts(request))

    def _perform(self, step: Step, state: RowState, sender: CountingSend) -> Any:
        context = self.context(step, state)
        if step.loop is None:
            return self._send_and_wait(step, state, state.row_key, context, sender)
        return [
            self._send_and_wait(step, state, key, item_context, sender)
            for key, item_context in self.run.loop_contexts(step, state.row_key, context)
        ]

    def _send_and_wait(
        self,
        step: Step,
        state: RowState,
        row_key: str,
        context: dict[str, Any],
        sender: CountingSend,
    ) -> Any:
        payload = self.render(step, state, context)
        keys = self.run.keys(row_key, step)
        self.run.build_request(step, payload, keys)  # mapping errors before any send
        operation = kinds.get(step.kind)
        result = operation.execute(payload, keys, self.run.people_family, sender)
        wait_spec = step.wait_until
        if wait_spec is None:
            return result
        deadline = time.monotonic() + wait_spec.timeout
        pause = wait_spec.interval
        while not holds(wait_spec.condition, {**context, "response": result}):
            if time.monotonic() + pause > deadline:
                expected, found = explain(wait_spec.condition, {**context, "response": result})
                raise StepFailure(
                    f"wait_until timed out after {wait_spec.timeout:g} s: "
                    f"{wait_spec.condition.expression}",
                    kind=WAIT_TIMEOUT,
                    location=wait_spec.condition.location,
                    expected=expected,
                    found=found,
                )
            self.sleep(pause)
            pause = min(pause * 2, wait_spec.max_interval)
            result = operation.execute(payload, keys, self.run.people_family, sender)
        return result

    def _save(self, step: Step, context: dict[str, Any], result: Any) -> None:
        if not step.save:
            return
        value = result
        if step.save_value is not None:
            value = evaluate_condition(
                step.save_value, {**context, "response": result}, step.location
            )
        context["steps"][step.save] = value

    def _check_expectations(self, step: Step, context: dict[str, Any], result: Any) -> None:
        if not step.expect:
            return  # most steps: no copy of the context for nothing
        scope = {**context, "response": result}
        for condition in step.expect:
            if not holds(condition, scope):
                expected, found = explain(condition, scope)
                raise StepFailure(
                    f"expectation failed: {condition.expression}",
                    kind=EXPECTATION,
                    location=condition.location,
                    expected=expected,
                    found=found,
                )


def _replayed(state: RowState, step: Step, status: Status) -> bool:
    """A step a resume replays (ok before): its request hash was kept with that outcome."""
    previous = state.before.get(step.key)
    return status == OK and previous is not None and previous.status == OK


def row_failure(exc: FlowInputError, row_number: int | None) -> Failure:
    """The Failure of a row that cannot start (its vars or key do not render)."""
    return replace(failure_of(exc), row=exc.row if exc.row is not None else row_number)


class CountingSend:
    """The transport's send, counting every attempt; commits the in-flight mark first when asked.

    With `expect`, the statuses a step expects are not retried (the transport raises them at
    once, with the error body), and `status` is the last answer's.
    """

    def __init__(
        self,
        transport: Transport,
        before_send: Callable[[Request], None] | None = None,
        expect: ExpectStatus | None = None,
    ) -> None:
        self._transport = transport
        self._before_send = before_send
        self._expect = expect
        self.attempts = 0
        self.status: int | None = None

    def __call__(self, request: Request) -> Response:
        if not request.repeatable and self._before_send is not None:
            # Committed first: a crash after this is UNKNOWN, never resent.
            self._before_send(request)
        try:
            if self._expect is None:
                response = self._transport.send(request)
            else:
                response = self._transport.send(request, accept=self._expect)
        except TransportError as exc:
            self.attempts += exc.attempts  # a failed request's attempts count too
            self.status = exc.status
            raise
        self.attempts += response.attempts
        self.status = response.status
        return response


def _unexpected_success(expected: ExpectStatus, status: int | None) -> StepFailure:
    return StepFailure(
        f"expected HTTP {expected.text}, but the API answered {status}",
        kind=EXPECTATION,
        location=expected.location,
        expected=f"HTTP {expected.text}",
        found=f"HTTP {status}",
    )


def summarize(step: Step, result: Any) -> str | None:
    """A few words about a response for the console: counts and ids, never personal data."""
    if isinstance(result, list):
        return f"{len(result)} item(s)"
    if not isinstance(result, dict):
        return None
    if "count" in result:
        return f"{result['count']} found"
    if "delivery_id" in result:
        return f"delivery {result['delivery_id']}"
    if "segments" in result:
        return f"{len(result['segments'])} segment(s)"
    if step.kind == "get_person":
        return f"{len(result.get('attributes') or {})} attribute(s)"
    return None
