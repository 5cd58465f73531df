"""The engine's user-facing errors: the CLI prints them without a traceback (exit code 2)."""

from __future__ import annotations


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
