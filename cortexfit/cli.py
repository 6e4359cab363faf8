"""The ``cortexfit`` command (placeholder until the info/demo commands land)."""
import sys


def main(argv=None) -> int:
    print("cortexfit: no command yet", file=sys.stderr)
    return 2
