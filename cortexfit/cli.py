"""The ``cortexfit`` command.

    cortexfit run CONFIG.toml [--out DIR] [--resume | --restart] [--force]
                                   load -> targets -> fit -> evaluate -> diagnostics -> report
    cortexfit demo [--out DIR]     the same on the embedded synthetic recording
    cortexfit report RUN_DIR       re-render a run folder's index.html
    cortexfit info PATH            what a recording holds (units, trials, conditions, events)
    cortexfit info --formats       the data formats a run config can name ([data] format)

``-q/--quiet`` prints only errors and the report's path; ``-v/--verbose`` adds the resolved
config and every warning.

User mistakes (bad input, config, files, folders: permissions, a full disk) print one
paragraph and exit with status 2, without a traceback; an internal error (a bug) exits with
status 1; ``--debug`` shows the traceback of either. A closed pipe (``| head``) ends the
command quietly.

Each command imports the modules that do its work when it runs, not when this module is
imported: importing the pipeline takes seconds (numba, scipy, xarray), and ``cortexfit
--help`` or ``cortexfit info`` should not wait for it.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .exceptions import ConfigError, CortexfitError, CortexfitWarning
from .runfolder import RunLock, os_error_message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cortexfit",
        description="Fit recurrent spiking networks to recorded cortical spike data.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="summarise a recording (NWB or any Neo file), or "
                                       "list the data formats")
    what = info.add_mutually_exclusive_group(required=True)
    what.add_argument("path", type=Path, nargs="?", help="an .nwb file or any file Neo reads")
    what.add_argument("--formats", action="store_true",
                      help="list the data formats a run config can name ([data] format)")
    info.add_argument(
        "--event-times", choices=["auto", "absolute", "relative"], default="auto",
        help="NWB only: are trials-table event columns absolute or relative to start_time",
    )
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.add_argument("--allow-pickle", action="store_true",
                      help="read a Python pickle (.pkl) file: only for files you trust, "
                           "since reading a pickle can run any code it contains")
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
    run.add_argument("--tune", action="store_true",
                     help="choose the fit settings on the validation trials first ([tune] "
                          "enabled = true: the config's grid, else the default one)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="with --tune: run the candidates on this Dask scheduler "
                          "(tcp://host:8786) instead of a local cluster")
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
    if args.formats:
        return _formats(args)
    from .io import load
    from .io.describe import describe

    kwargs = {"event_times": args.event_times} if args.path.suffix.lower() == ".nwb" else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CortexfitWarning)
        block = load(args.path, allow_pickle=args.allow_pickle, **kwargs)
    summary = describe(block)
    summary.notes.extend(str(w.message) for w in caught if issubclass(w.category, CortexfitWarning))
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, default=str))
    else:
        print(summary)
    return 0


def _formats(args: argparse.Namespace) -> int:
    """``cortexfit info --formats``: the table of data formats."""
    from . import datasets  # noqa: F401  (registers its formats: the table is complete)
    from .io.describe import describe_formats
    from .io.formats import data_formats

    if args.json:
        print(json.dumps([fmt.as_dict() for fmt in data_formats()], indent=2, default=str))
    else:
        print(describe_formats())
    return 0


def _run(args: argparse.Namespace) -> int:
    from .config import load_config, with_settings
    from .pipeline import run

    _check_flags(args)
    config = load_config(args.config)
    extra = {}
    if args.tune:
        extra["tune.enabled"] = True
    if args.scheduler:
        extra["tune.scheduler"] = args.scheduler
    if args.scheduler and not (args.tune or config.tune.enabled):
        raise ConfigError("--scheduler sends the settings search's candidates to a cluster, "
                          "but the search is off", field="--scheduler",
                          found=args.scheduler, expected="--tune (or [tune] enabled = true)",
                          hint="Add --tune")
    if extra:
        config = with_settings(config, extra, field="--tune / --scheduler")
    run(config, args.out, resume=args.resume, restart=args.restart, force=args.force,
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

    if not args.run_dir.is_dir():
        raise ConfigError("not a run folder", file=args.run_dir, field="RUN_DIR",
                          found="a file" if args.run_dir.exists() else "no such folder",
                          expected="a run folder written by `cortexfit run`")
    with RunLock(args.run_dir):  # not while a run writes into it
        path = build_report(args.run_dir)
    print(f"Report: {path.resolve()}")
    return 0


def _say_error(command: str, text: str, hint: str | None = None) -> None:
    print(f"cortexfit {command}: error: {text}", file=sys.stderr)
    print(hint or "(run with --debug for a traceback)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status: 0 done, 2 a problem the user can act on
    (bad input, config, file or folder; the message says what to do), 1 an internal error
    (a bug: ``--debug`` shows the traceback), 130 interrupted."""
    args = _parser().parse_args(argv)
    handlers = {"info": _info, "demo": _demo, "run": _run, "report": _report}
    try:
        return handlers[args.command](args)
    except BrokenPipeError:
        # the reader of our output went away (`cortexfit info FILE | head`): stop quietly
        _silence_stdout()
        return 0
    except CortexfitError as exc:
        if args.debug:
            raise
        _say_error(args.command, str(exc))
        return 2
    except OSError as exc:  # a file or folder problem outside the pipeline's own checks
        if args.debug:
            raise
        what, hint = os_error_message(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        _say_error(args.command, f"{what}{where}: {exc}.",
                   (hint + "." if hint else "") + " (run with --debug for a traceback)")
        return 2
    except KeyboardInterrupt as exc:
        advice = getattr(exc, "advice", None)
        stage = getattr(exc, "stage", None)
        print(f"cortexfit {args.command}: interrupted" + (f" during the {stage} stage"
                                                          if stage else ""), file=sys.stderr)
        if advice:
            print(advice, file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (a bug: say so, in one paragraph)
        if args.debug:
            raise
        _say_error(args.command,
                   f"internal error ({type(exc).__name__}: {str(exc)[:300]}). This is a bug "
                   "in cortexfit, not a problem with your input.",
                   "Rerun with --debug for the traceback and report it; a run folder is "
                   "not damaged by it (rerun the same command to continue).")
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
