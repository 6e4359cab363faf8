"""Shared argument checks that raise :class:`~cortexfit.exceptions.ConfigError`."""
from __future__ import annotations

from typing import Any

import numpy as np

from .exceptions import ConfigError

__all__ = ["check_nonnegative"]


def check_nonnegative(name: str, value: Any, *, allow_zero: bool = False, unit: str = "") -> float:
    """``value`` as a finite float that is > 0 (or >= 0 with ``allow_zero``)."""
    suffix = f" {unit}" if unit else ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} is not a number", field=name, found=repr(value),
                          expected=f"a number{suffix}") from None
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{name} is out of range", field=name, found=value,
                          expected=(">= 0" if allow_zero else "> 0") + suffix)
    return number
