"""Checks every reader makes before it opens a recording file.

* :func:`check_input_file`: the path exists, is a file (a directory gets its own message)
  and can be read (a permission problem gets its own message, not "corrupt").
* :func:`pickle_kind`: whether the first bytes of a file are a Python pickle, whatever the
  file is called (a renamed ``.pkl`` is still a pickle).
* :func:`no_unpickling`: a context in which any attempt to unpickle a Python object (by
  any library: neo's PickleIO, ``joblib``, ``numpy.load(allow_pickle=True)``, ...) fails
  before the pickle can name a function to call. The readers wrap every third-party read
  in it unless the caller passed ``allow_pickle=True``.

Why: a pickle is a program. Reading one calls whatever functions it names (``os.system``
included), so a recording that arrives as a pickle can run any code on the reader's
machine. Formats that hold only data (NWB, NIX, Blackrock, ...) cannot.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import pickletools
import sys
from collections.abc import Iterator
from pathlib import Path

from ..exceptions import FileFormatError, UnsafeFileError

__all__ = [
    "PICKLE_HINT",
    "check_input_file",
    "no_unpickling",
    "pickle_kind",
    "read_head",
    "unsafe_pickle_error",
]

PICKLE_HINT = (
    "Only if you trust the file (you or a colleague wrote it, it has not been altered), "
    "read it with allow_pickle=True (cortexfit.io.load / read_neo), --allow-pickle on the "
    "command line or allow_pickle = true in the config's [data] table; better, convert it "
    "once to NIX (cortexfit.io.write_nix) and use that"
)
_WHY = "reading a Python pickle can run any code it contains"

# Opcodes through which a pickle gets hold of something it can call (REDUCE, BUILD, NEWOBJ
# then call it): every one goes through Unpickler.find_class.
_GLOBAL_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"})
_HEAD_BYTES = 1 << 16


def read_head(path: str | os.PathLike, n: int = _HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of a file (OSError as raised by ``open``)."""
    with open(path, "rb") as handle:
        return handle.read(n)


def pickle_kind(head: bytes) -> str | None:
    """Describe ``head`` (a file's first bytes) if it is a Python pickle, else None.

    Protocol 2 and later start with the PROTO opcode, ``b"\\x80"`` and the protocol number
    (2-5), followed by valid opcodes. Protocol 0 and 1 have no header: they are recognised
    when the bytes parse as a complete pickle (up to its STOP opcode) that fetches a global
    (a function or class), which is what a pickle needs in order to run anything.
    """
    if not head:
        return None
    if head[0] == 0x80:
        if len(head) < 2 or not 2 <= head[1] <= 5:
            return None
        ops = 0
        try:
            for _opcode, _arg, _pos in pickletools.genops(head):
                ops += 1
                if ops >= 3:
                    break
        except Exception:  # noqa: BLE001 - ran off the head or a bad opcode
            # a header and the frame/opcode after it are enough for a long pickle
            return f"Python pickle (protocol {head[1]})" if ops >= 2 else None
        return f"Python pickle (protocol {head[1]})" if ops >= 2 else None
    fetches_global = False
    try:
        for opcode, _arg, _pos in pickletools.genops(head):
            if opcode.name in _GLOBAL_OPCODES:
                fetches_global = True
            if opcode.name == "STOP":
                return "Python pickle (protocol 0/1)" if fetches_global else None
    except Exception:  # noqa: BLE001 - not a (complete) pickle
        return None
    return None


def unsafe_pickle_error(path: str | os.PathLike, found: str) -> UnsafeFileError:
    """The refusal to read a pickle: names the file, says why and how to trust it."""
    return UnsafeFileError(
        f"refusing to read the file: {_WHY}", file=path, field="format", found=found,
        expected="a data format that holds no code (NWB, NIX, Blackrock, Plexon, ...)",
        hint=PICKLE_HINT,
    )


def check_input_file(path: str | os.PathLike, *, expected: str) -> None:
    """Raise :class:`FileFormatError` unless ``path`` is an existing, readable file.

    ``expected`` describes the file wanted (e.g. "an NWB 2 (.nwb) file"). A directory
    gets its own message (not "does not exist"), and so does a permission problem.
    """
    path = Path(path)
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a parent folder without search permission
        raise _os_error(path, exc, expected) from None
    if not exists:
        raise FileFormatError(
            "the file does not exist", file=path, field="path", found="no such file",
            expected=expected,
        )
    if path.is_dir():
        raise FileFormatError(
            "the path is a directory, but a file is expected", file=path, field="path",
            found="a directory", expected=expected, hint="Give the file inside it",
        )
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise _os_error(path, exc, expected) from None


def _os_error(path: Path, exc: OSError, expected: str) -> FileFormatError:
    if isinstance(exc, PermissionError):
        return FileFormatError(
            "the file cannot be read: permission denied", file=path, field="path",
            found=f"{type(exc).__name__}: {exc.strerror or exc}", expected=expected,
            hint="Check the file's and its folders' permissions (ls -l), or read a copy you own",
        )
    return FileFormatError(
        "the file cannot be read", file=path, field="path",
        found=f"{type(exc).__name__}: {exc.strerror or exc}", expected=expected,
    )


def os_error(path: str | os.PathLike, exc: OSError, expected: str) -> FileFormatError:
    """A :class:`FileFormatError` for an OSError met while opening ``path``."""
    return _os_error(Path(path), exc, expected)


# ----------------------------------------------------------------------------------------
# Blocking unpickling while a third-party reader runs
# ----------------------------------------------------------------------------------------

_FORBID = contextvars.ContextVar("cortexfit_forbid_unpickling", default=None)
_HOOK_INSTALLED = False


class UnpicklingBlocked(RuntimeError):
    """Raised (inside the reader) when a pickle asks for a global while unpickling is
    forbidden; :func:`no_unpickling` turns it into :class:`UnsafeFileError`."""


def _importing() -> bool:
    """Whether a module is being imported (a library loading its own cache at import
    time, as pynwb does with its schema's type map: not data from the file being read)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _audit(event: str, args: tuple) -> None:
    if event == "pickle.find_class":
        where = _FORBID.get()
        if where is not None and not _importing():
            where["blocked"] = f"{args[0]}.{args[1]}"
            raise UnpicklingBlocked(
                f"unpickling is not allowed (the pickle asked for {args[0]}.{args[1]})"
            )


def _install_hook() -> None:
    global _HOOK_INSTALLED
    if not _HOOK_INSTALLED:
        sys.addaudithook(_audit)  # audit hooks cannot be removed: installed once, cheap
        _HOOK_INSTALLED = True


@contextlib.contextmanager
def no_unpickling(path: str | os.PathLike, *, allow: bool = False) -> Iterator[None]:
    """Within this context, unpickling fails before a pickle can call anything.

    Python announces every global a pickle looks up (the audit event
    ``pickle.find_class``; no pickle can call a function without one); the hook makes
    that lookup fail while the context is active (in this thread or task only), except
    while a module is being imported (pynwb, imported lazily, unpickles its own schema
    cache: installed code, not the data file). Whatever
    the reader does with that failure, :class:`UnsafeFileError` naming ``path`` is raised
    when the context ends. ``allow=True``: a no-op.
    """
    if allow:
        yield
        return
    _install_hook()
    state: dict[str, str] = {}
    token = _FORBID.set(state)
    try:
        yield
    except BaseException as exc:
        if "blocked" in state or isinstance(exc, UnpicklingBlocked):
            raise unsafe_pickle_error(
                path, f"the reader tried to unpickle data (it asked for "
                f"{state.get('blocked', 'a Python object')})",
            ) from None
        raise
    finally:
        _FORBID.reset(token)
    if "blocked" in state:
        raise unsafe_pickle_error(
            path, f"the reader tried to unpickle data (it asked for {state['blocked']})"
        )
