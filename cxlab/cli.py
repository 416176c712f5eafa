"""The command line (CONTRACT §4): ``main(argv) -> exit code``.

Exit code 0 on success, 2 on bad input (the named error on stderr), 1 on an
internal fault.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cxlab.api import DEFAULT_EXPERIMENTS_DIR, catalog_path, results_for, summarize_all
from cxlab.config import find_experiment, load_catalog, load_experiments
from cxlab.errors import InputError
from cxlab.events import resolve_source
from cxlab.health import health_report, health_to_dict


class UsageError(InputError):
    """A bad command-line argument."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of: '{text}' is not a date YYYY-MM-DD") from None


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, help="log file, folder or glob")
    parser.add_argument(
        "--experiments",
        default=str(DEFAULT_EXPERIMENTS_DIR),
        help="folder of experiment configs (default: experiments/)",
    )
    parser.add_argument(
        "--metrics", default=None, help="metric catalog (default: metrics.yaml there)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m cxlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="analyse one experiment or all of them")
    analyze.add_argument("experiment", nargs="?", help="config file or experiment id")
    analyze.add_argument("--all", action="store_true", help="every experiment")
    _add_config_args(analyze)
    analyze.add_argument("--as-of", default=None, help="analyse as of the end of DATE")
    analyze.add_argument("--history", action="store_true", help="one object per day")
    analyze.add_argument("--format", choices=("json", "csv", "table"), default="json")

    check = sub.add_parser("check", help="validate a log and configs; health report")
    _add_config_args(check)
    check.add_argument("--format", choices=("text", "json"), default="text")

    sample = sub.add_parser("sample", help="regenerate the bundled sample log")
    sample.add_argument("--out", default="data/events.parquet")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--users", type=int, default=200_000)

    plan = sub.add_parser("plan", help="sample size, duration and MDE for a metric")
    plan.add_argument("--metric", required=True, help="metric id from the catalog")
    plan.add_argument(
        "--events", default=None, help="log to take baseline/variance from"
    )
    plan.add_argument("--experiments", default=str(DEFAULT_EXPERIMENTS_DIR))
    plan.add_argument("--metrics", default=None)
    plan.add_argument(
        "--experiment",
        default=None,
        help="experiment whose control arm supplies the baseline",
    )
    plan.add_argument("--baseline", type=float, default=None, help="baseline mean")
    plan.add_argument(
        "--sd", type=float, default=None, help="per-user standard deviation"
    )
    plan.add_argument("--mde", type=float, default=0.05, help="relative MDE, e.g. 0.05")
    plan.add_argument("--alpha", type=float, default=0.05)
    plan.add_argument("--power", type=float, default=0.8)
    plan.add_argument("--variants", type=int, default=2)
    plan.add_argument("--daily-users", type=float, default=None)
    plan.add_argument("--tuning", type=int, default=5000)
    plan.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _analyze(args: argparse.Namespace) -> str:
    if args.all == bool(args.experiment):
        raise UsageError("analyze: give an experiment (id or config file) or --all")
    as_of = _date(args.as_of) if args.as_of else None
    catalog = load_catalog(catalog_path(args.experiments, args.metrics))
    if args.all:
        experiments = load_experiments(args.experiments, catalog)
    else:
        experiments = [find_experiment(args.experiment, args.experiments, catalog)]
    # The statistics' imports (scipy, about half a second) run in a thread while
    # the log is scanned: the scan runs in Polars' own threads, so they overlap.
    imports = threading.Thread(
        target=importlib.import_module, args=("cxlab.report",), daemon=True
    )
    imports.start()
    summaries = summarize_all(
        resolve_source(args.events), experiments, catalog, as_of=as_of, log_health=False
    )
    imports.join()
    from cxlab.report import experiment_to_dict, to_csv, to_json, to_table

    objects: list[dict[str, Any]] = []
    for exp in experiments:
        results = results_for(exp, catalog, summaries[exp.id], history=args.history)
        objects += [experiment_to_dict(r) for r in results]
    if args.format == "csv":
        return to_csv(objects)
    if args.format == "table":
        return to_table(objects)
    if args.all or args.history:
        return to_json(objects)
    return to_json(objects[0])


def _check(args: argparse.Namespace) -> str:
    catalog = load_catalog(catalog_path(args.experiments, args.metrics))
    experiments = load_experiments(args.experiments, catalog)
    source = resolve_source(args.events)
    summaries = summarize_all(source, experiments, catalog)
    report = health_report(source, experiments, summaries)
    if args.format == "json":
        from cxlab.report import to_json

        return to_json(health_to_dict(report))
    return report.as_text()


def _sample(args: argparse.Namespace) -> str:
    from cxlab.sample import write_sample

    path = write_sample(Path(args.out), seed=args.seed, n_users=args.users)
    return f"wrote {path}"


def _plan(args: argparse.Namespace) -> str:
    from cxlab.planning import plan_from_args

    return plan_from_args(args)


COMMANDS = {"analyze": _analyze, "check": _check, "sample": _sample, "plan": _plan}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0)
    try:
        output = COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        print("internal error (please report it):", file=sys.stderr)
        traceback.print_exc()
        return 1
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return 0
