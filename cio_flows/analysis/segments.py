"""Workspace reads of segments: the list with counts, members, and overlaps between them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from ..wire.kinds import Request, Response
from . import frames, reads


class SegmentReads:
    """Workspace methods over segments (mixed into Workspace)."""

    _send: Callable[[Request], Response]
    _bar: Callable[..., Any]
    attributes_of: Callable[[list[dict[str, Any]]], pd.DataFrame]
    _fresh: Callable[..., Any]

    def segments(self, counts: bool = True) -> pd.DataFrame:
        """id, name, type, description and (one call per segment) the member count."""
        listed = (self._send(reads.list_segments()).body or {}).get("segments") or []
        table = pd.DataFrame(listed).reindex(columns=["id", "name", "type", "description"])
        if counts:
            bar = self._bar(len(listed), "segment counts", unit="segment")
            try:
                values = []
                for segment_id in table["id"]:
                    body = self._send(reads.segment_count(segment_id)).body or {}
                    values.append(body.get("count"))
                    bar.update()
            finally:
                bar.close()
            table["count"] = pd.array(values, dtype="Int64")
        return self._fresh(table)

    def segment_members(self, segment_id: int | str, attributes: bool = False) -> pd.DataFrame:
        """Members' identifiers (and attributes with attributes=True), every page followed."""
        identifiers = self._membership(segment_id)
        if attributes:
            return self.attributes_of(identifiers)
        return self._fresh(frames.identifiers_frame(identifiers))

    def _membership(self, segment_id: int | str) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = []
        page = lambda start: reads.membership_page(segment_id, start)  # noqa: E731
        for body in reads.pages(self._send, page, "ids"):
            identifiers = body.get("identifiers") or [{"id": i} for i in body.get("ids") or []]
            members.extend(identifiers)
        return members

    def overlap(
        self, segment_ids: list[int] | None = None, normalize: bool = False
    ) -> pd.DataFrame:
        """Square table of people in both segments (the diagonal is each segment's size).

        normalize=True gives the share of the row's segment that is also in the column's.
        Labels are segment names (with the id when two segments share a name).
        """
        listed = self.segments(counts=False)
        if segment_ids is not None:
            listed = listed[listed["id"].isin(segment_ids)]
        labels = _labels(listed)
        bar = self._bar(len(listed), "memberships", unit="segment")
        members: dict[str, set[tuple[str, str]]] = {}
        try:
            for segment_id, label in zip(listed["id"], labels, strict=True):
                found = self._membership(segment_id)
                members[label] = {k for k in map(reads.lookup_key, found) if k}
                bar.update()
        finally:
            bar.close()
        table = pd.DataFrame(
            [[len(members[a] & members[b]) for b in labels] for a in labels],
            index=pd.Index(labels, name="segment"),
            columns=pd.Index(labels, name="also in"),
        )
        if normalize:
            sizes = pd.Series({label: len(members[label]) for label in labels})
            table = table.div(sizes.replace(0, pd.NA), axis=0).astype(float).fillna(0.0)
        return self._fresh(table)


def _labels(segments: pd.DataFrame) -> list[str]:
    names = [str(n) for n in segments["name"]]
    return [
        name if names.count(name) == 1 else f"{name} ({segment_id})"
        for name, segment_id in zip(names, segments["id"], strict=True)
    ]
