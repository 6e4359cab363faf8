"""Readers that turn recordings into a ``neo.Block`` in cortexfit's trial convention."""
from .convention import (
    Trial,
    check_block,
    event_names,
    event_time,
    make_block,
    trial_annotations,
    unit_annotations,
    unit_ids,
)

__all__ = [
    "Trial",
    "check_block",
    "event_names",
    "event_time",
    "make_block",
    "trial_annotations",
    "unit_annotations",
    "unit_ids",
]
