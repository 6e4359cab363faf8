"""What a run prints (the pipeline's and the stages' one voice)."""
from __future__ import annotations

import sys

__all__ = ["Console"]


class Console:
    """What a run prints: 0 quiet (errors and the report path only), 1 one line per stage
    and progress bars, 2 also the resolved config, warnings' sources and file names."""

    def __init__(self, verbosity: int = 1, stream=None):
        self.verbosity = verbosity
        self.stream = stream or sys.stderr

    def say(self, text: str, level: int = 1) -> None:
        if self.verbosity >= level:
            print(text, file=self.stream, flush=True)

    @property
    def bars(self) -> bool:
        return self.verbosity >= 1
