"""What the engine tells its listeners (console, JSON and JUnit reports, journal)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from ..errors import Location, Outcome
from ..flow.model import Step


class Status(StrEnum):
    """What became of a step (or a row): the words reports, journals and callers rely on."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"  # may or may not have happened: the answer was lost


OK, FAILED, SKIPPED, UNKNOWN = Status.OK, Status.FAILED, Status.SKIPPED, Status.UNKNOWN


class FlowStatus(StrEnum):
    """What became of a flow in a suite (`cio-flows test`, its JSON and JUnit reports)."""

    PASSED = "passed"
    FAILED = "failed"
    INVALID = "invalid"  # bad input: it did not run
    NOT_RUN = "not run"  # another flow was invalid, or --fail-fast stopped the suite


class FailureKind(StrEnum):
    """What went wrong, for reports and callers that sort failures."""

    EXPECTATION = "expectation"  # the step ran; its answer was wrong
    WAIT_TIMEOUT = "wait_timeout"  # the step ran; wait_until never held
    HTTP = "http"  # an HTTP error status
    TRANSPORT = "transport"  # no usable answer at all
    PAYLOAD = "payload"  # bad input found while running: a payload,
    TEMPLATE = "template"  # a template,
    DATA = "data"  # a data row
    CREDENTIALS = "credentials"  # missing keys
    INPUT = "input"  # any other bad input
    NOT_RESENT = "not_resent"  # outcome unknown in an earlier attempt of the run, not sent again


EXPECTATION, WAIT_TIMEOUT = FailureKind.EXPECTATION, FailureKind.WAIT_TIMEOUT
HTTP, TRANSPORT = FailureKind.HTTP, FailureKind.TRANSPORT
PAYLOAD, TEMPLATE, DATA = FailureKind.PAYLOAD, FailureKind.TEMPLATE, FailureKind.DATA
CREDENTIALS, INPUT = FailureKind.CREDENTIALS, FailureKind.INPUT
NOT_RESENT = FailureKind.NOT_RESENT


class ExitCode(IntEnum):
    """cio-flows' exit statuses (as pytest's ExitCode). When several apply: 3, then 4, then 1."""

    OK = 0
    FAILED = 1  # a step failed (or the run was interrupted)
    INVALID = 2  # bad input: nothing was sent
    REFUSED = 3  # Customer.io refused the credentials (401 / 403)
    UNAVAILABLE = 4  # no answer after retries, a send's outcome unknown, the journal failed


EXIT_OK, EXIT_FAILED, EXIT_INVALID = ExitCode.OK, ExitCode.FAILED, ExitCode.INVALID
EXIT_REFUSED, EXIT_UNAVAILABLE = ExitCode.REFUSED, ExitCode.UNAVAILABLE
REFUSED_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    flow_name: str
    flow_path: str
    region: str
    targets: dict[str, str]  # family -> root URL
    rows: int | None = None  # the data rows to run, when counted before sending (progress total)
    notes: tuple[str, ...] = ()  # what the checks before sending left out (duplicate-key rows)


@dataclass(frozen=True)
class Failure:
    """Why a step, a row or a run failed, as data; `message` is the text every output shows."""

    kind: FailureKind
    message: str
    location: Location | None = None  # file:line:col in the flow or data file
    step: str | None = None
    row: int | None = None
    expected: str | None = None
    found: str | None = None
    outcome: Outcome = Outcome.FAILED  # or UNKNOWN: the server may have acted on it
    status: int | None = None  # the HTTP status, for kind "http"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, init=False)
class StepFinished:
    step: Step
    row_number: int | None
    row_key: str | None
    status: Status
    elapsed: float
    attempts: int = 0
    error: str | None = None
    detail: Any = None  # a short summary of the response, never a payload
    saved: Any = None  # what the step saved (steps.<save>), for the journal and a resume
    failure: Failure | None = None  # set when failed or unknown; `error` is its message
    once_key: str | None = None  # the step's `once` key, when it succeeded: the journal keeps it
    # The hash of the step's request for this row, kept by the journal for `run --changed`
    # (run/changed.py); None when the run keeps none (or a resume replayed the step).
    request_hash: int | None = None

    def __init__(
        self,
        step: Step,
        row_number: int | None,
        row_key: str | None,
        status: Status,
        elapsed: float,
        attempts: int = 0,
        error: str | None = None,
        detail: Any = None,
        saved: Any = None,
        failure: Failure | None = None,
        once_key: str | None = None,
        request_hash: int | None = None,
    ) -> None:
        """The dataclass's own __init__, filling the frozen instance's dict in one update
        rather than one object.__setattr__ a field (1.5 -> 0.6 us; one is made per event).
        A test keeps these parameters the fields, in order, with their defaults."""
        self.__dict__.update(
            step=step,
            row_number=row_number,
            row_key=row_key,
            status=status,
            elapsed=elapsed,
            attempts=attempts,
            error=error,
            detail=detail,
            saved=saved,
            failure=failure,
            once_key=once_key,
            request_hash=request_hash,
        )


@dataclass(frozen=True)
class RowFinished:
    row_number: int | None
    row_key: str | None
    status: Status  # OK or FAILED (some step failed or had an unknown outcome)


@dataclass(frozen=True)
class RowFailed:
    """A row that could not start: its vars or key do not render. None of its steps ran."""

    row_number: int | None
    failure: Failure

    @property
    def error(self) -> str:
        return self.failure.message


@dataclass(frozen=True)
class RunError:
    """The run itself broke (a data file that fails mid-run): no further row starts."""

    failure: Failure

    @property
    def error(self) -> str:
        return self.failure.message


@dataclass
class RunSummary:
    run_id: str
    flow_name: str
    counts: dict[str, int] = field(
        default_factory=lambda: {OK: 0, FAILED: 0, SKIPPED: 0, UNKNOWN: 0}
    )
    rows: int = 0
    failed_rows: list[int] = field(default_factory=list)
    elapsed: float = 0.0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    processes: int = 1  # worker processes the run used (run/processes.py)
    interrupted: bool = False
    # A second signal: the rows in flight were not waited for. Their sends not safe to repeat
    # are in flight in the journal (unknown on resume); a front door exits at once (os._exit).
    abandoned: bool = False
    journal_error: str | None = None  # the journal could not be written: sending stopped
    refused: str | None = None  # the first failure where Customer.io refused the credentials
    unavailable: str | None = None  # the first with no answer, or whose outcome is unknown
    # On resume, the unknown sends settled by reading Customer.io (run/settle.py), each
    # {row_key, step_key, step, how: found | absent | unreadable, reason}
    settled: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.counts[FAILED] and not self.counts[UNKNOWN] and not self.interrupted

    def note(self, outcome: StepFinished) -> None:
        """Remember the first step failure that sets a stronger exit status than 1."""
        cause = exit_status_of(outcome)
        if cause == EXIT_REFUSED and self.refused is None:
            self.refused = outcome.error
        elif cause == EXIT_UNAVAILABLE and self.unavailable is None:
            unknown = outcome.status == UNKNOWN
            what = "a send's outcome is unknown" if unknown else "Customer.io stayed unavailable"
            self.unavailable = f"{what}: {outcome.error}"

    @property
    def exit_code(self) -> ExitCode:
        if self.refused is not None:
            return EXIT_REFUSED
        if self.journal_error is not None or self.unavailable is not None:
            return EXIT_UNAVAILABLE
        return EXIT_OK if self.ok else EXIT_FAILED

    @property
    def exit_cause(self) -> str | None:
        """What the exit status stands for, in words, naming the first failure behind it."""
        code = self.exit_code
        if code == EXIT_REFUSED:
            return f"Customer.io refused the credentials: {self.refused}"
        if code == EXIT_UNAVAILABLE:
            if self.unavailable is None:
                return f"the journal could not be written: {self.journal_error}"
            return self.unavailable
        if code == EXIT_FAILED:
            return "the run was interrupted" if self.interrupted else "a step failed"
        return None


def stopped_before_sending(outcome: StepFinished) -> bool:
    """A step refused its first request because the run was stopping (Ctrl-C, a journal
    that failed): nothing left. The executor records it only when the step's in-flight mark
    was committed, which its outcome must answer; otherwise a resume simply runs it."""
    failure = outcome.failure
    return failure is not None and failure.kind == TRANSPORT and outcome.attempts == 0


def exit_status_of(outcome: StepFinished) -> ExitCode:
    """The exit status one step's outcome calls for (0 when it did not fail).

    401/403 is a refused key; no answer after retries (a transport failure once something was
    attempted, a 5xx or 429 left after retries) or a send whose outcome is unknown is 4.
    """
    failure = outcome.failure
    if outcome.status not in (FAILED, UNKNOWN) or failure is None:
        return EXIT_OK
    if failure.kind == HTTP and failure.status in REFUSED_STATUSES:
        return EXIT_REFUSED
    if failure.outcome == Outcome.UNKNOWN or outcome.status == UNKNOWN:
        return EXIT_UNAVAILABLE
    if failure.kind == TRANSPORT and outcome.attempts > 0:  # 0: stopped before sending (Ctrl-C)
        return EXIT_UNAVAILABLE
    status = failure.status if failure.kind == HTTP else None
    if status is not None and (status == 429 or status >= 500):  # still failing after retries
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


@dataclass(frozen=True)
class RunFinished:
    summary: RunSummary


Event = RunStarted | StepFinished | RowFailed | RowFinished | RunError | RunFinished
Listener = Callable[[Event], None]
