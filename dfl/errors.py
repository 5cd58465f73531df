"""The engine's user-facing errors: the CLI prints them without a traceback (exit code 2)."""

from __future__ import annotations

import errno
from pathlib import Path

# The `dfl` command's exit codes.
EXIT_OK = 0
EXIT_FAILED = 1  # the work stopped with an error
EXIT_USAGE = 2  # the user's input cannot be used (missing folder, bad option, ...)
EXIT_CANCELLED = 130  # Ctrl+C (at a prompt or while working)

# OS errors meaning "this place cannot be written": a read-only file system, no permission.
_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class UserError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The error types to report as user mistakes; imported on use so `dfl --help` stays fast."""
    from dfl.backend import BackendError
    from dfl.data.batcher import BatchError
    from dfl.data.faceset import FacesetError
    from dfl.data.jpeg_metadata import MetadataError
    from dfl.models.registry import UnknownModelError
    from dfl.options import OptionError
    from dfl.store.model_store import (
        StateError,  # ModelLockedError and NoUsableStateError are StateErrors
    )
    from dfl.store.workspace import WorkspaceError

    return (
        FacesetError,
        MetadataError,
        OptionError,
        UnknownModelError,
        StateError,
        WorkspaceError,
        BatchError,
        BackendError,
    )


def read_only_message(error: BaseException) -> str | None:
    """A user message for an OSError saying a folder cannot be written (read-only file system,
    no permission), naming the folder and what to do; None for any other error."""
    if not isinstance(error, OSError) or error.errno not in _READ_ONLY_ERRNOS:
        return None
    if not error.filename:
        return f"cannot write here: {error.strerror or error}. Choose a writable folder."
    target = Path(error.filename)
    why = "is on a read-only file system" if error.errno == errno.EROFS else "is not writable"
    return (
        f"cannot create {target}: the folder {target.parent} {why} ({error.strerror}). "
        "Make it writable, or choose another place (--workspace DIR; for `dfl train` also "
        "--model-dir DIR). Nothing was changed."
    )
