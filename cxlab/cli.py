"""The command line (CONTRACT §4): ``main(argv) -> exit code``.

Exit code 0 on success, 2 on bad input (the named error on stderr), 1 on an
internal fault (one line; ``--debug`` prints the traceback).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cxlab.api import DEFAULT_EXPERIMENTS_DIR, catalog_path, results_for, summarize_all
from cxlab.config import (
    Catalog,
    MetricDef,
    find_experiment,
    load_catalog,
    load_experiments,
    load_experiments_each,
)
from cxlab.errors import InputError, printable
from cxlab.events import resolve_source
from cxlab.health import health_report
from cxlab.sql.engines import ENGINES, resolve_engine, resolve_events
from cxlab.sql.reduction import DIALECTS, build_reduction, render
from cxlab.sql.tables import read_summaries
from cxlab.sql.target import LOCAL_MASTER, MASTER_ENV, REMOTE_ENV, SparkTarget

if TYPE_CHECKING:  # the planning (scipy) is imported on first use
    from cxlab.planning import Baseline


MIN_SAMPLE_USERS = 1_000


class UsageError(InputError):
    """A bad command-line argument."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of: '{text}' is not a date YYYY-MM-DD") from None


def _add_config_args(
    parser: argparse.ArgumentParser, *, events_required: bool = True
) -> None:
    parser.add_argument(
        "--events",
        required=events_required,
        help="log file, folder or glob; spark engine also s3a://… gs://… abfss://… "
        "URIs and catalog tables table:DB.NAME",
    )
    parser.add_argument(
        "--experiments",
        default=str(DEFAULT_EXPERIMENTS_DIR),
        help="folder of experiment configs (default: experiments/)",
    )
    parser.add_argument(
        "--metrics", default=None, help="metric catalog (default: metrics.yaml there)"
    )


def _add_engine_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="reduction engine; the output is the same whichever runs it "
        "(auto: polars for local files, spark for table:NAME or a URI)",
    )
    parser.add_argument(
        "--spark-master",
        default=None,
        help=f"spark engine: a master URL (env {MASTER_ENV}; default {LOCAL_MASTER})",
    )
    parser.add_argument(
        "--spark-remote",
        default=None,
        help=f"spark engine: a Spark Connect URL sc://HOST:PORT (env {REMOTE_ENV})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="cxlab",
        description="CX Lab: A/B tests on the metrics customers feel. Exit code 0 "
        "on success, 2 on bad input, 1 on an internal fault (--debug shows it).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="print the traceback of an internal fault"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, parents=[common])

    analyze = add("analyze", "analyse one experiment or all of them")
    analyze.add_argument("experiment", nargs="?", help="config file or experiment id")
    analyze.add_argument("--all", action="store_true", help="every experiment")
    _add_config_args(analyze, events_required=False)
    analyze.add_argument(
        "--summaries",
        default=None,
        help="a table made by `cxlab sql` (CSV or Parquet) instead of --events",
    )
    analyze.add_argument("--as-of", default=None, help="analyse as of the end of DATE")
    analyze.add_argument("--history", action="store_true", help="one object per day")
    analyze.add_argument("--format", choices=("json", "csv", "table"), default="json")
    _add_engine_arg(analyze)

    check = add("check", "validate a log and configs; health report")
    _add_config_args(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    _add_engine_arg(check)

    sql = add("sql", "print the reduction as SQL, to run where the data is")
    sql.add_argument("experiment", help="config file or experiment id")
    sql.add_argument("--experiments", default=str(DEFAULT_EXPERIMENTS_DIR))
    sql.add_argument("--metrics", default=None)
    sql.add_argument("--dialect", choices=DIALECTS, default="duckdb")
    sql.add_argument("--table", default="events", help="the events table's name")
    sql.add_argument("--as-of", default=None, help="cut the data at the end of DATE")

    app = add("app", "start the dashboard on this folder's data/ and experiments/")
    app.add_argument(
        "--address",
        default="127.0.0.1",
        help="where the server listens (default: this machine only; configure a "
        "login before sharing it, README 'Login, roles and data sources')",
    )
    app.add_argument("--port", type=int, default=None, help="default: 8501")

    sample = add(
        "sample",
        "write the bundled sample log (and the example configs, if experiments/ "
        "has none)",
    )
    sample.add_argument("--out", default="data/events.parquet")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--users", type=int, default=200_000)

    plan = add("plan", "sample size, duration and MDE for a metric")
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


def _analyze(args: argparse.Namespace, problems: list[InputError]) -> str:
    if args.all == bool(args.experiment):
        raise UsageError("analyze: give an experiment (id or config file) or --all")
    as_of = _date(args.as_of) if args.as_of else None
    catalog = load_catalog(catalog_path(args.experiments, args.metrics))
    if args.all:  # a broken config disables only itself
        experiments, errors = load_experiments_each(args.experiments, catalog)
        problems += errors
    else:
        experiments = [find_experiment(args.experiment, args.experiments, catalog)]
    # The statistics' imports (scipy, about half a second) run in a thread while
    # the log is scanned: the scan runs in Polars' own threads, so they overlap.
    imports = threading.Thread(
        target=importlib.import_module, args=("cxlab.report",), daemon=True
    )
    imports.start()
    if (args.events is None) == (args.summaries is None):
        raise UsageError("analyze: give --events LOG or --summaries FILE (one of them)")
    if args.summaries is not None:
        summaries = read_summaries(args.summaries, experiments, catalog, as_of=as_of)
    else:
        engine = resolve_engine(args.engine, events=args.events)
        summaries = summarize_all(
            resolve_events(args.events, engine),
            experiments,
            catalog,
            as_of=as_of,
            log_health=False,
            engine=engine,
            spark=SparkTarget.of(args.spark_master, args.spark_remote),
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


def _check(args: argparse.Namespace, problems: list[InputError]) -> str:
    catalog = load_catalog(catalog_path(args.experiments, args.metrics))
    experiments = load_experiments(args.experiments, catalog)
    engine = resolve_engine(args.engine, events=args.events)
    source = resolve_events(args.events, engine)
    summaries = summarize_all(
        source,
        experiments,
        catalog,
        engine=engine,
        spark=SparkTarget.of(args.spark_master, args.spark_remote),
    )
    report = health_report(source, experiments, summaries)
    from cxlab.report import health_text, health_to_dict, to_json

    if args.format == "json":
        return to_json(health_to_dict(report))
    return health_text(report)


def _sql(args: argparse.Namespace, problems: list[InputError]) -> str:
    catalog = load_catalog(catalog_path(args.experiments, args.metrics))
    exp = find_experiment(args.experiment, args.experiments, catalog)
    as_of = _date(args.as_of) if args.as_of else None
    query = build_reduction([exp], catalog, table=args.table, as_of=as_of)
    return render(query, args.dialect) + ";\n"


def _sample(args: argparse.Namespace, problems: list[InputError]) -> str:
    if args.users < MIN_SAMPLE_USERS:
        raise UsageError(f"--users must be at least {MIN_SAMPLE_USERS:,}")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    from cxlab.sample import write_sample
    from cxlab.workspace import add_examples

    path = write_sample(Path(args.out), seed=args.seed, n_users=args.users)
    return "\n".join([f"wrote {path}", *add_examples(Path.cwd())])


def _app(args: argparse.Namespace, problems: list[InputError]) -> NoReturn:
    """Become the dashboard's server (exec: the same process).

    ``cxlab.ui.serve`` analyses the default workspace, then runs Streamlit. A
    signal that stops ``cxlab app`` (Ctrl-C, a service manager's SIGTERM) so
    reaches the server itself; a child server would outlive its parent.
    """
    from cxlab import workspace

    folder = Path.cwd()
    for line in workspace.add_examples(folder):
        print(line, file=sys.stderr)
    script = workspace.app_folder() / "app.py"
    flags = workspace.streamlit_flags(args.address, args.port)
    env = {**os.environ, workspace.WORKSPACE_ENV: str(folder)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        sys.executable,
        [sys.executable, "-m", "cxlab.ui.serve", str(script), *flags],
        env,
    )


def _plan(args: argparse.Namespace, problems: list[InputError]) -> str:
    return plan_from_args(args)


Command = Callable[[argparse.Namespace, list[InputError]], str]
COMMANDS: dict[str, Command] = {
    "analyze": _analyze,
    "check": _check,
    "sql": _sql,
    "sample": _sample,
    "app": _app,
    "plan": _plan,
}


def _print_errors(errors: Sequence[InputError]) -> None:
    for exc in errors:
        print("error: " + printable(str(exc), keep="\n"), file=sys.stderr)


def _fault(exc: BaseException, *, debug: bool) -> int:
    """Report an internal fault: one line, or the traceback with ``--debug``."""
    if debug:
        traceback.print_exc()
    else:
        detail = printable(f"{type(exc).__name__}: {exc}")[:300]
        print(
            f"internal error: {detail} (please report it; rerun with --debug "
            "for the traceback)",
            file=sys.stderr,
        )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    A command's output goes to stdout; problems that disable only a part of it
    (a broken experiment config under ``analyze --all``) go to stderr, one line
    each, after it, and make the exit code 2.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0)
    problems: list[InputError] = []
    try:
        output = COMMANDS[args.command](args, problems)
    except InputError as exc:
        _print_errors([*problems, exc])
        return 2
    except OSError as exc:  # a path the user gave that the system refuses
        if exc.filename is None:
            return _fault(exc, debug=args.debug)
        _print_errors([*problems, InputError(f"{exc.filename}: {exc.strerror}")])
        return 2
    except Exception as exc:
        return _fault(exc, debug=args.debug)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    _print_errors(problems)
    return 2 if problems else 0


def _baseline_from_log(
    args: argparse.Namespace, metric: MetricDef, catalog: Catalog
) -> Baseline:
    from cxlab.planning import (
        baseline_from_summaries,
        experiments_using,
        pick_experiment,
    )

    experiments = load_experiments(args.experiments, catalog)
    if args.experiment is None:  # the latest healthy one: read every candidate
        candidates = experiments_using(metric.id, experiments)
    else:
        candidates = [pick_experiment(metric.id, experiments, args.experiment)]
    summaries = summarize_all(resolve_source(args.events), candidates, catalog)
    chosen = pick_experiment(
        metric.id, experiments, args.experiment, summaries=summaries
    )
    return baseline_from_summaries(metric, chosen, summaries[chosen.id])


def plan_from_args(args: argparse.Namespace) -> str:
    """Run ``python -m cxlab plan`` on parsed arguments; return its output.

    Args:
        args: the ``plan`` sub-command's arguments (see :func:`build_parser`).

    Returns:
        The plan as text or JSON.

    Raises:
        InputError: unknown metric, no baseline available, or inputs out of range.
    """
    from cxlab.planning import make_plan
    from cxlab.report import plan_text, plan_to_dict

    catalog = load_catalog(catalog_path(args.experiments, args.metrics))
    if args.metric not in catalog:
        raise InputError(
            f"unknown metric '{args.metric}' (the catalog {catalog.source} has: "
            f"{', '.join(catalog.ids)})"
        )
    metric = catalog[args.metric]
    if args.experiment is not None and args.events is None:
        raise InputError("--experiment needs --events to read its control arm")
    if args.sd is not None and not args.sd > 0:
        raise InputError(f"--sd must be positive, got {args.sd:g}")
    baseline = _baseline_from_log(args, metric, catalog) if args.events else None
    mean = args.baseline if args.baseline is not None else None
    if mean is None and baseline is not None:
        mean = baseline.mean
    if args.sd is not None:
        var = args.sd**2
    elif args.baseline is not None and metric.type == "proportion":
        var = args.baseline * (1 - args.baseline)  # Bernoulli p(1 − p)
    elif baseline is not None:
        var = baseline.var
    else:
        var = None
    if mean is None or var is None:
        raise InputError(
            f"no baseline for '{metric.id}': give --baseline and --sd, or --events "
            "to take them from the control arm of an experiment"
        )
    daily = args.daily_users
    if daily is None and baseline is not None:
        daily = baseline.daily_users
    source = (
        baseline.source
        if baseline is not None and args.baseline is None and args.sd is None
        else "given"
    )
    plan = make_plan(
        metric,
        mean,
        var,
        relative_mde=args.mde,
        alpha=args.alpha,
        power=args.power,
        variants=args.variants,
        daily_users=daily,
        sequential=False,
        tuning=args.tuning,
        population_share=baseline.population_share if baseline else 1.0,
        baseline_source=source,
    )
    if args.format == "json":
        return json.dumps(plan_to_dict(plan), indent=2, allow_nan=False) + "\n"
    return plan_text(plan)
