"""The exception tree. Every error a user can cause is a FlowInputError (exit status 2).

CioFlowsError
├── FlowInputError         bad input, found before anything is sent: exit 2
│   ├── FlowSyntaxError    the YAML itself
│   ├── FlowSchemaError    the flow's structure (unknown keys, wrong types, unknown step kinds)
│   ├── TemplateError      template syntax, undefined names
│   ├── PayloadError       a rendered payload that breaks its step's JSON Schema
│   ├── DataFileError      for_each / --data rows
│   └── CredentialsError   missing keys for the API families a flow needs
├── StepFailure            a step that ran but did not succeed: an expectation, a wait that timed out
├── TransportError         a request that did not succeed (carries whether it may have reached the server)
└── JournalError           the run journal cannot be opened, locked or written
    └── RunInUseError      another process is executing the same run id

Signals caught inside the package, never shown as they are:
TemplateLimitError, NotJsonError (templating -> TemplateError), NeedsPipelines (-> CredentialsError),
FlowFailed (a flow that failed under pytest; the plugin prints its report).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What became of a request that did not succeed (kept in reports and the journal)."""

    FAILED = "failed"  # the server provably did not act on it, or said no
    UNKNOWN = "unknown"  # it may have: never resent blindly when not safe to repeat


@dataclass(frozen=True)
class Location:
    """A place in a source file, 1-based, as editors and compilers print it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class CioFlowsError(Exception):
    """Base of every error cio-flows raises on purpose."""


class FlowInputError(CioFlowsError):
    """Invalid input. Renders as `file:line:col: step 'name': row N: reason (expected X, found Y)`."""

    def __init__(
        self,
        reason: str,
        *,
        location: Location | None = None,
        step: str | None = None,
        row: int | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.reason = reason
        self.location = location
        self.step = step
        self.row = row
        self.expected = expected
        self.found = found
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.step is not None:
            parts.append(f"step '{self.step}'")
        if self.row is not None:
            parts.append(f"row {self.row}")
        text = self.reason
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected or '?'}, found {self.found or '?'})"
        parts.append(text)
        return ": ".join(parts)

    def with_context(self, *, step: str | None = None, row: int | None = None) -> FlowInputError:
        """The same error, naming the step and row it happened in."""
        clone = type(self).__new__(type(self))
        FlowInputError.__init__(
            clone,
            self.reason,
            location=self.location,
            step=self.step if step is None else step,
            row=self.row if row is None else row,
            expected=self.expected,
            found=self.found,
        )
        return clone


class FlowSyntaxError(FlowInputError):
    pass


class FlowSchemaError(FlowInputError):
    pass


class TemplateError(FlowInputError):
    pass


class PayloadError(FlowInputError):
    pass


class DataFileError(FlowInputError):
    pass


class CredentialsError(FlowInputError):
    pass


class StepFailure(CioFlowsError):
    """A step that ran but did not succeed: an expectation that did not hold, a wait that timed out.

    Renders as `file:line:col: reason (expected X, found Y)`; `kind` is "expectation" or
    "wait_timeout".
    """

    def __init__(
        self,
        reason: str,
        *,
        kind: str = "expectation",
        location: Location | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.reason = reason
        self.kind = kind
        self.location = location
        self.expected = expected
        self.found = found
        super().__init__(self.describe())

    def describe(self) -> str:
        text = self.reason
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected or '?'}, found {self.found or '?'})"
        return f"{self.location}: {text}" if self.location is not None else text


class TransportError(CioFlowsError):
    """A request that failed.

    `outcome` is "failed" when the server provably did not act on it (or said no), and "unknown"
    when it may have (a timeout or a 5xx after the body was sent): those are never resent for
    operations that are not safe to repeat.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome: Outcome = Outcome.FAILED,
        status: int | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after
        self.body = body  # the error answer's JSON, for a step that expects this status


class JournalError(CioFlowsError):
    """The run journal cannot be opened, locked or written. Before a run: exit 2, nothing sent;
    during one: sending stops (a send that cannot be recorded first is not sent), exit 4."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"journal {path}: {reason}")
        self.path = path
        self.reason = reason


class RunInUseError(JournalError):
    """Another process holds the run id's lock."""

    def __init__(self, path: object, run_id: str, holder: str) -> None:
        super().__init__(
            path,
            f"run '{run_id}' is being executed by {holder}; wait for it to finish or stop it"
            " (one process at a time runs a run id)",
        )
        self.run_id = run_id
        self.holder = holder


class ExportError(CioFlowsError):
    """An App API export that failed, took too long, or whose file could not be downloaded."""


# --- signals caught inside the package ------------------------------------------------------


class TemplateLimitError(Exception):
    """A template would build a value over the sandbox's limits."""


class NotJsonError(Exception):
    """A template's result is not a JSON value."""


class NeedsPipelines(ValueError):
    """The payload can only be carried by the Pipelines API (e.g. an anonymousId identify)."""


class FlowFailed(Exception):
    """A flow run as a pytest item failed; `result` is its ScenarioResult."""

    def __init__(self, result: object) -> None:
        super().__init__(getattr(result, "name", "flow failed"))
        self.result = result
