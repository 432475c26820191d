"""One place that decides what happens to a bad record: raise at once, or count and go on.

Readers call :meth:`BadRecords.add` for every bad row or archive member. Without
``skip_bad`` that raises :class:`~v2p.errors.BadInputError` naming the file and row; with it,
the record is counted by reason (a few examples kept) so the run can report at the end
how many were skipped and why. Nothing is dropped without being counted here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from v2p.errors import BadInputError


@dataclass(frozen=True)
class BadRecord:
    source: str
    location: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.source}, {self.location}: {self.detail}"


@dataclass
class BadRecords:
    """Collects skipped records; raises instead when ``skip_bad`` is off."""

    skip_bad: bool = False
    examples_per_reason: int = 5
    counts: Counter = field(default_factory=Counter)
    examples: list[BadRecord] = field(default_factory=list)

    def add(self, source: str, location: str, reason: str, detail: str) -> None:
        """Record one bad record. ``reason`` is a short key (``empty_prompt``), ``detail`` a sentence."""
        if not self.skip_bad:
            raise BadInputError(source, detail, location=location)
        self.counts[reason] += 1
        if self.counts[reason] <= self.examples_per_reason:
            self.examples.append(BadRecord(str(source), location, reason, detail))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict:
        """Plain-data view for ``--json`` output and end-of-run reports."""
        return {
            "total": self.total,
            "by_reason": dict(sorted(self.counts.items())),
            "examples": [
                {"source": e.source, "location": e.location, "reason": e.reason, "detail": e.detail}
                for e in self.examples
            ],
        }
