"""The ``cortexfit`` command.

    cortexfit run CONFIG.toml [--out DIR] [--resume | --restart] [--force]
                                   load -> targets -> fit -> evaluate -> diagnostics -> report
    cortexfit demo [--out DIR]     the same on the embedded synthetic recording
    cortexfit report RUN_DIR       re-render a run folder's index.html
    cortexfit info PATH            what a recording holds (units, trials, conditions, events)

``-q/--quiet`` prints only errors and the report's path; ``-v/--verbose`` adds the resolved
config and every warning.

User mistakes print the error message and exit with status 2, without a traceback;
``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .exceptions import ConfigError, CortexfitError, CortexfitWarning


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

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--resume", action="store_true",
                       help="continue an interrupted fit from its checkpoint")
        p.add_argument("--restart", action="store_true",
                       help="discard an interrupted fit's checkpoint and train again")
        p.add_argument("--force", action="store_true",
                       help="run every stage, even those whose inputs did not change")
        common(p)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
        loud = p.add_mutually_exclusive_group()
        loud.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                          help="print only errors and the report's path")
        loud.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                          help="also print the resolved config and every warning")

    run = sub.add_parser("run", help="run a pipeline from a TOML config into a run folder")
    run.add_argument("config", type=Path, help="the TOML config (see pipelines/)")
    run.add_argument("--out", type=Path, default=None,
                     help="run folder (default: reports/<run.name>)")
    run_options(run)

    demo = sub.add_parser(
        "demo", help="run the main job on the embedded synthetic recording and write a report"
    )
    demo.add_argument("--out", type=Path, default=Path("reports/demo"), help="run folder")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--loops", type=int, default=None, help="RLS training loops (default 30)")
    run_options(demo)

    report = sub.add_parser("report", help="re-render the HTML report of a run folder")
    report.add_argument("run_dir", type=Path, help="a run folder written by `cortexfit run`")
    common(report)
    for p in (parser,):
        p.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)
        p.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    return parser


def _verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 2 if args.verbose else 1


def _check_flags(args: argparse.Namespace) -> None:
    if args.resume and args.restart:
        raise ConfigError("--resume and --restart exclude each other", field="--resume",
                          expected="one of them")


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


def _run(args: argparse.Namespace) -> int:
    from .pipeline import run

    _check_flags(args)
    run(args.config, args.out, resume=args.resume, restart=args.restart, force=args.force,
        verbosity=_verbosity(args))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .pipeline import run_demo

    _check_flags(args)
    run_demo(args.out, seed=args.seed, loops=args.loops, resume=args.resume,
             restart=args.restart, force=args.force, verbosity=_verbosity(args))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report.build import build_report

    path = build_report(args.run_dir)
    print(f"Report: {path.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"info": _info, "demo": _demo, "run": _run, "report": _report}
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
        if args.command in ("run", "demo"):
            print("An interrupted fit continues from its last checkpoint when you rerun the "
                  "same command with --resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
