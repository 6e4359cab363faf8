"""The ``cortexfit`` command.

    cortexfit info PATH            what a recording holds (units, trials, conditions, events)
    cortexfit demo [--out DIR]     the embedded synthetic recording -> targets -> HTML report

User mistakes print the error message and exit with status 2, without a traceback;
``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .exceptions import CortexfitError, CortexfitWarning


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cortexfit",
        description="Fit recurrent spiking networks to recorded cortical spike data.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="summarise a recording (NWB or any Neo file)")
    info.add_argument("path", type=Path, help="an .nwb file or any file Neo reads")
    info.add_argument(
        "--event-times", choices=["auto", "absolute", "relative"], default="auto",
        help="NWB only: are trials-table event columns absolute or relative to start_time",
    )
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    demo = sub.add_parser(
        "demo", help="run the main job on the embedded synthetic recording and write a report"
    )
    demo.add_argument("--out", type=Path, default=Path("reports/demo"), help="run folder")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--loops", type=int, default=30, help="RLS training loops")
    demo.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _info(args: argparse.Namespace) -> int:
    from .io import load
    from .io.describe import describe

    kwargs = {"event_times": args.event_times} if args.path.suffix.lower() == ".nwb" else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CortexfitWarning)
        block = load(args.path, **kwargs)
    summary = describe(block)
    summary.notes.extend(str(w.message) for w in caught if issubclass(w.category, CortexfitWarning))
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, default=str))
    else:
        print(summary)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .pipeline import run_demo

    result = run_demo(args.out, seed=args.seed, loops=args.loops)
    print(f"Report: {result.report.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"info": _info, "demo": _demo}
    try:
        return handlers[args.command](args)
    except CortexfitError as exc:
        if args.debug:
            raise
        print(f"cortexfit {args.command}: error: {exc}", file=sys.stderr)
        print("(run with --debug for a traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
