"""Typed errors raised by the indexer and the query layer.

Every message says what failed and what to do next; the CLI prints `str(err)`
on one line and the API maps the class to a status code.
"""

from __future__ import annotations

from pathlib import Path


class VisualIntentError(Exception):
    """Base class for errors a user can act on."""


class RecordError(VisualIntentError):
    """One catalog record is invalid: names the file, line, field and reason."""

    def __init__(self, source: object, line: int, field: str, reason: str, record_id: str | None = None):
        """`source` is a file path, or an in-memory batch's name (anything whose str() names it)."""
        self.source = str(source)
        self.line = line
        self.field = field
        self.reason = reason
        self.record_id = record_id
        where = f"{self.source}:{line}"
        who = f" ({record_id})" if record_id else ""
        super().__init__(f"{where}{who}: field '{field}': {reason}")

    def __reduce__(self) -> tuple[type[RecordError], tuple[str, int, str, str, str | None]]:
        """Pickled by its fields (Ray actors send errors back to the driver)."""
        return RecordError, (self.source, self.line, self.field, self.reason, self.record_id)


class CatalogError(VisualIntentError):
    """A whole catalog was rejected (strict mode, or an unreadable file)."""

    def __init__(self, message: str, errors: list[RecordError] | None = None):
        self.errors = errors or []
        super().__init__(message)


class MediaError(VisualIntentError):
    """A media file could not be decoded or breaks a documented limit."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[MediaError], tuple[str, str]]:
        return MediaError, (self.path, self.reason)


class IndexMismatchError(VisualIntentError):
    """The index on disk was built with other encoders or another schema version."""


class IndexNotFoundError(VisualIntentError):
    """No index exists at the given location."""


class VocabularyError(VisualIntentError):
    """A vocabulary data file is malformed (a duplicate label, an unknown `same_as`)."""


class EncoderUnavailableError(VisualIntentError):
    """An encoder's weights or package cannot be loaded."""


class NotFoundError(VisualIntentError):
    """A scene, ad or persona id is not in the index."""


class VersionNotReachedError(VisualIntentError):
    """A read asked for an index version (`min_version`) this process has not caught up with in time."""


class WriteConflictError(VisualIntentError):
    """Another writer (another replica) committed a conflicting change to the same rows at the same time."""


class DistributedUnavailableError(VisualIntentError):
    """The distributed engine (Ray) is not installed, cannot be reached, or lacks what was asked of it."""
