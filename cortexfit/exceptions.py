"""Errors raised by cortexfit.

Every error a user can cause is a :class:`CortexfitError`. Its message names the file,
the field, what was found and what was expected, so that it can be acted on without a
traceback. The ``cortexfit`` command prints the message and exits non-zero; ``--debug``
shows the traceback.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = [
    "CortexfitError",
    "DataError",
    "FileFormatError",
    "UnsafeFileError",
    "RunFolderError",
    "TargetError",
    "ConfigError",
    "TrainingDiverged",
    "CortexfitWarning",
]


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CortexfitError(Exception):
    """Base class of every error cortexfit raises for bad input, configuration or training.

    Parameters
    ----------
    message
        What went wrong, in one sentence.
    file, field
        Where: the file (path) and the field (column, variable, argument) concerned.
    found, expected
        What was found and what was expected instead.
    hint
        What the user can do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        field: str | None = None,
        found: Any = None,
        expected: Any = None,
        hint: str | None = None,
    ) -> None:
        self.file = os.fspath(file) if file is not None else None
        self.field = field
        self.found = found
        self.expected = expected
        self.hint = hint
        parts = [message.rstrip(".") + "."]
        if self.file is not None:
            parts.append(f"File: {self.file}.")
        if field is not None:
            parts.append(f"Field: {field}.")
        if found is not None:
            parts.append(f"Found: {_short(found)}.")
        if expected is not None:
            parts.append(f"Expected: {_short(expected)}.")
        if hint is not None:
            parts.append(hint.rstrip(".") + ".")
        super().__init__(" ".join(parts))


class DataError(CortexfitError, ValueError):
    """A recording (file, Block or arrays) does not meet cortexfit's trial convention."""


class FileFormatError(DataError):
    """A file cannot be opened or is not of the expected format (corrupt, not NWB, ...)."""


class UnsafeFileError(FileFormatError):
    """Reading the file would run code from it (a Python pickle); refused unless trusted."""


class RunFolderError(CortexfitError, OSError):
    """A run folder cannot be used as asked: locked by another run, holds something else,
    cannot be written (permissions, disk full)."""


class TargetError(CortexfitError, ValueError):
    """Targets cannot be made as asked (unknown event or condition, window outside trials...)."""


class ConfigError(CortexfitError, ValueError):
    """A setting is out of range or of the wrong type."""


class TrainingDiverged(CortexfitError, RuntimeError):
    """Training produced NaN/inf or runaway rates."""


class CortexfitWarning(UserWarning):
    """Something in the input was repaired or ignored; the message says what."""
