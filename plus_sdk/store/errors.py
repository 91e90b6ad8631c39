"""Every error the summary store raises, under one base class ``SummaryStoreError``."""

class SummaryStoreError(Exception):
    """Base of every error the store raises."""


class InvalidUserIdError(SummaryStoreError, ValueError):
    """A user id is empty, too long or uses characters outside the allowed set."""


class SummaryTooLargeError(SummaryStoreError, ValueError):
    """A summary text (or a metadata field) is longer than the store accepts."""


class EmptySummaryError(SummaryStoreError, ValueError):
    """A summary text is empty."""


class InvalidTextError(SummaryStoreError, ValueError):
    """A text holds a control character (NUL and the other C0 controls except newline, tab and CR)."""


class UnknownUserError(SummaryStoreError, LookupError):
    """The user has no summaries in the store."""


class UnknownVersionError(SummaryStoreError, LookupError):
    """The user has no version with that number."""


class StoreBusyError(SummaryStoreError):
    """Another writer held the database for longer than the busy timeout."""


class SchemaError(SummaryStoreError):
    """The database's schema is newer than this code, or unreadable."""


class ImportFormatError(SummaryStoreError, ValueError):
    """An import file is not a valid summaries export."""


class ImportConflictError(SummaryStoreError, ValueError):
    """An imported user already has summaries in the store."""



class UnknownKeyError(SummaryStoreError, LookupError):
    """No active API key has that id."""
