"""Typed errors. Library code raises these; only the CLI turns them into one-line messages.

Every error about input names *where* the problem is (file, row, archive member) so a user
with a 383 MB CSV or a 10 GB tar can find the offending record without a traceback.
"""

from __future__ import annotations


class V2PError(Exception):
    """Base class: an expected failure with a message fit for a user."""


class BadInputError(V2PError):
    """Input that cannot be read as asked (wrong columns, corrupt file, bad row)."""

    def __init__(self, source: str, reason: str, *, location: str | None = None):
        self.source = str(source)
        self.reason = reason
        self.location = location
        where = f"{self.source}, {location}" if location else self.source
        super().__init__(f"{where}: {reason}")


class VideoDecodeError(BadInputError):
    """A video (file or archive member) that no backend can decode."""


class EncoderSpecError(V2PError):
    """An encoder spec that names nothing known, or whose weights are not available."""


class IndexMismatchError(V2PError):
    """An index queried with another encoder or a different layout than it was built with."""
