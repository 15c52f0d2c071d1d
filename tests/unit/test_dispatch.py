"""The dispatcher: every listener hears every event, in order, whatever the others do."""

from __future__ import annotations

import threading

from cio_flows.errors import JournalError
from cio_flows.redact import Redactor
from cio_flows.run.dispatch import BulkListener, Dispatcher


def test_a_raising_listener_is_reported_once_and_the_others_hear_everything():
    reports: list[str] = []
    heard: list[int] = []

    def broken(event):
        raise ValueError(f"cannot write {event}")

    def also_broken(event):
        raise KeyError("other")

    dispatch = Dispatcher([broken, heard.append, also_broken], report=reports.append)
    for n in range(5):
        dispatch(n)
    assert heard == [0, 1, 2, 3, 4]
    assert len(reports) == 2  # one line per failing listener, at its first error
    assert "broken failed on int: ValueError: cannot write 0" in reports[0]
    assert "KeyError" in reports[1]
    assert sorted(dispatch.errors.values()) == [5, 5]


def test_a_journal_error_goes_to_on_stop_and_delivery_goes_on():
    stops: list[JournalError] = []
    heard: list[str] = []

    def journal(event):
        raise JournalError("j.db", "cannot be written")

    dispatch = Dispatcher([journal, heard.append], on_stop=stops.append, report=heard.append)
    dispatch("a")
    assert heard == ["a"] and [str(e) for e in stops] == ["journal j.db: cannot be written"]


def test_reports_are_redacted():
    reports: list[str] = []

    def leaky(event):
        raise RuntimeError("401 for key track-secret-abcdef")

    Dispatcher([leaky], report=reports.append, redact=Redactor(["track-secret-abcdef"]))("e")
    assert "track-secret-abcdef" not in reports[0] and "***" in reports[0]


def test_events_from_many_threads_reach_a_listener_one_at_a_time():
    inside = threading.Semaphore(1)
    overlaps: list[int] = []
    heard: list[int] = []

    def slow(event):
        if not inside.acquire(blocking=False):
            overlaps.append(event)
            return
        try:
            heard.append(event)
        finally:
            inside.release()

    dispatch = Dispatcher([slow])
    threads = [
        threading.Thread(target=lambda base=t: [dispatch(base * 100 + n) for n in range(100)])
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [] and len(heard) == 400
    for t in range(4):  # each thread's events in the order it sent them
        mine = [e for e in heard if e // 100 == t]
        assert mine == sorted(mine)


class _Bulk(BulkListener):
    """A listener taking consecutive events in one call when it can."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, event: int) -> None:
        self.calls.append([event])

    def many(self, events: list[int]) -> None:
        self.calls.append(list(events))


def test_many_events_reach_a_bulk_listener_in_one_call_and_the_others_one_by_one():
    bulk, heard = _Bulk(), []
    dispatch = Dispatcher([bulk, heard.append])
    dispatch.many([1, 2, 3])
    dispatch(4)
    dispatch.many([])
    assert bulk.calls == [[1, 2, 3], [4]]
    assert heard == [1, 2, 3, 4]


def test_many_events_are_guarded_as_single_ones():
    stops: list[JournalError] = []
    reports: list[str] = []
    heard: list[int] = []

    class Journal(BulkListener):
        def __call__(self, event: int) -> None:
            raise AssertionError("many() is called, not this")

        def many(self, events: list[int]) -> None:
            raise JournalError("j.db", "cannot be written")

    def broken(event: int) -> None:
        if event == 2:
            raise ValueError("two")

    dispatch = Dispatcher(
        [Journal(), broken, heard.append], on_stop=stops.append, report=reports.append
    )
    dispatch.many([1, 2, 3])
    assert [str(e) for e in stops] == ["journal j.db: cannot be written"]
    assert heard == [1, 2, 3]  # a listener failing on one event still lets the next have all
    assert len(reports) == 1 and "failed on int: ValueError: two" in reports[0]


def test_a_callers_listener_with_a_many_attribute_is_still_called_per_event():
    class Caller:
        def __init__(self) -> None:
            self.heard: list[int] = []
            self.many = "not a method of the protocol"

        def __call__(self, event: int) -> None:
            self.heard.append(event)

    caller = Caller()
    Dispatcher([caller]).many([1, 2])
    assert caller.heard == [1, 2]
