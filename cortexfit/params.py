"""Declared constraints on settings, checked in one place (in the manner of scikit-learn's
``_parameter_constraints`` / ``validate_params``).

An estimator or function declares, next to its settings, one constraint per setting::

    PARAMETER_CONSTRAINTS = {"lam": Interval(0, None, closed="neither"),
                             "form": Options("auto", "rate", "drive"), ...}

:func:`validate` checks values against them and raises a :class:`ConfigError` whose message
is built here, the same for every setting. The run config (:mod:`cortexfit.config`) builds
its fields' bounds from the same declarations (:func:`pydantic_bounds`), so the library and
the config cannot drift apart (``tests/contract/test_contract.py`` checks that they agree).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .exceptions import ConfigError

__all__ = ["Interval", "Options", "AnyOf", "Constraint", "validate", "pydantic_bounds"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value)))


@dataclass(frozen=True)
class Interval:
    """A finite number (``integer``: a whole one) in ``[lo, hi]``, each end open or closed
    (``closed``: "both", "left", "right" or "neither"; None: unbounded). ``none_ok``: None
    is allowed too (and means what the setting documents)."""

    lo: float | None
    hi: float | None
    closed: str = "both"
    integer: bool = False
    none_ok: bool = False
    meaning: str = ""
    """What the number is (unit), for the message."""

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none_ok
        if not (_is_int(value) if self.integer else _is_real(value)):
            return False
        v = float(value)
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.lo is not None and (v < self.lo or (v == self.lo and not left)):
            return False
        return not (self.hi is not None and (v > self.hi or (v == self.hi and not right)))

    def expected(self) -> str:
        kind = "an integer" if self.integer else "a number"
        parts = []
        if self.lo is not None:
            parts.append(f"{'>=' if self.closed in ('both', 'left') else '>'} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<=' if self.closed in ('both', 'right') else '<'} {self.hi:g}")
        text = f"{kind} {' and '.join(parts)}" if parts else kind
        if self.meaning:
            text += f" ({self.meaning})"
        return text + (", or None" if self.none_ok else "")


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared with ``==``; bools are not numbers here)."""

    values: tuple[Any, ...]
    none_ok: bool = False

    def __init__(self, *values: Any, none_ok: bool = False) -> None:
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "none_ok", none_ok)

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none_ok or None in self.values
        # same kind and equal: True is not 1, "1" is not 1
        return any(isinstance(value, type(v)) and value == v for v in self.values
                   if v is not None)

    def expected(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class AnyOf:
    """Any one of several constraints (e.g. ``"all"`` or an integer >= 1)."""

    options: tuple[Any, ...]

    def __init__(self, *options: Any) -> None:
        object.__setattr__(self, "options", tuple(options))

    def accepts(self, value: Any) -> bool:
        return any(c.accepts(value) for c in self.options)

    def expected(self) -> str:
        return " or ".join(c.expected() for c in self.options)


Constraint = Interval | Options | AnyOf


def validate(constraints: Mapping[str, Constraint], values: Mapping[str, Any], *,
             where: str = "") -> None:
    """Check every declared setting in ``values``; the first that fails raises a
    :class:`ConfigError` naming it, what was found and what is expected."""
    for name, constraint in constraints.items():
        if name not in values:
            continue
        value = values[name]
        if not constraint.accepts(value):
            found = repr(value) if not isinstance(value, np.ndarray) else \
                f"an array of shape {value.shape}"
            raise ConfigError(f"{where + ': ' if where else ''}{name} is out of range",
                              field=name, found=found[:120], expected=constraint.expected())


def pydantic_bounds(constraint: Constraint) -> dict[str, float]:
    """The ``gt`` / ``ge`` / ``lt`` / ``le`` keywords of a pydantic ``Field`` for an
    :class:`Interval` (empty for other constraints)."""
    if not isinstance(constraint, Interval):
        return {}
    out: dict[str, float] = {}
    if constraint.lo is not None:
        out["ge" if constraint.closed in ("both", "left") else "gt"] = constraint.lo
    if constraint.hi is not None:
        out["le" if constraint.closed in ("both", "right") else "lt"] = constraint.hi
    return out
