"""What a chart picture costs the server: vl-convert's time per chart the pages draw.

    python bench/pictures.py                 # measure, print, update RESULTS.md
    python bench/pictures.py --rounds 5 --no-write

Builds, from one scan of the bundled sample log (``data/events.parquet``, generated
on first use) and ``experiments/``, the charts the pages draw as pictures
(:func:`cxlab.charts.figure_svg`, as ``cxlab.ui.drawing`` makes them, at the
page's width): every experiment's forests for each method and, for its first
treatment, the lift over time, the values per arm and the posterior of each of its
metrics; the Data page's events per day. Each picture is made ``--rounds`` times in
the pictures' workers (:mod:`cxlab.rendering`, warmed by one round first), and as
often in workers that see the system's fonts, as before 2026-12-04; a row is the
median and max per kind of chart.

Then a new as-of day of proactive-shipping-email on the results page, the view whose
pictures are all new at once: its decision method's forests and its first metric's
lift, made one after another in one worker, and all started at once in the
pictures' workers (:data:`cxlab.rendering.WORKERS`) as ``cxlab.ui.drawing.start``
does (days alternated between the two ways, each picture new to both; one more day
first, untimed, so that both workers are warm).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import vl_convert  # noqa: E402

from cxlab import charts, rendering  # noqa: E402
from cxlab.analysis import ExperimentResult  # noqa: E402
from cxlab.api import results_for, summarize_all  # noqa: E402
from cxlab.config import load_catalog, load_experiments  # noqa: E402
from cxlab.decision import METHODS, in_points  # noqa: E402
from cxlab.events import resolve_source  # noqa: E402
from cxlab.studio import events_per_day  # noqa: E402
from cxlab.ui.drawing import PAGE_WIDTH  # noqa: E402

SAMPLE = ROOT / "data" / "events.parquet"
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Chart pictures: what each costs the server"
COMMAND = "python bench/pictures.py"
AS_OF_EXPERIMENT = "proactive-shipping-email"
FONTS: tuple[rendering.Fonts, ...] = ("own", "system")


def histories() -> dict[str, list[ExperimentResult]]:
    """Every sample experiment as of each day (one scan of the sample log)."""
    if not SAMPLE.is_file():
        from cxlab.sample import write_sample

        write_sample(SAMPLE)
    catalog = load_catalog(ROOT / "experiments" / "metrics.yaml")
    experiments = load_experiments(ROOT / "experiments", catalog)
    summaries = summarize_all(resolve_source(SAMPLE), experiments, catalog)
    out = {}
    for e in experiments:
        if history := results_for(e, catalog, summaries[e.id], history=True):
            out[e.id] = history
    return out


def page_charts(
    every: dict[str, list[ExperimentResult]],
) -> list[tuple[str, charts.Chart, int]]:
    """(kind, chart, width) of every picture the pages draw on the sample."""
    drawn: list[tuple[str, charts.Chart, int]] = []
    for history in every.values():
        result = history[-1]
        variant = result.experiment.treatments[0]
        for method in METHODS:
            for i, forest in enumerate(charts.delta_forest(result, method)):
                kind = "forest" if i == 0 else "forest in points"
                drawn.append((kind, forest, PAGE_WIDTH))
        for metric in dict.fromkeys(r.metric.id for r in result.results):
            row = result.result(metric, variant)
            drawn += [
                (
                    "lift over time",
                    charts.cumulative_lift(history, metric, variant, "rel"),
                    PAGE_WIDTH,
                ),
                (
                    "values per arm",
                    charts.arm_values_over_time(history, metric),
                    PAGE_WIDTH,
                ),
                (
                    "posterior",
                    charts.posterior(
                        row.bayesian,
                        row.metric.direction,
                        points_per_unit=row.control.value
                        if in_points(row.metric)
                        else None,
                    ),
                    PAGE_WIDTH,
                ),
            ]
    per_day = charts.events_per_day_chart(events_per_day(resolve_source(SAMPLE)))
    drawn.append(("events per day (Data page)", per_day, round(PAGE_WIDTH * 2 / 3)))
    return drawn


def _ms(seconds: float) -> float:
    return seconds * 1000


@contextlib.contextmanager
def made_with(fonts: rendering.Fonts) -> Iterator[None]:
    """``figure_svg``'s pictures made by the workers with ``fonts``.

    The pages' are made with ``"own"``; ``"system"`` is how they were made before.
    """
    original, chosen = charts.render, fonts

    def render(function: str, *args: Any, fonts: str, **kwargs: Any) -> Any:
        return original(function, *args, fonts=chosen, **kwargs)

    charts.render = render
    try:
        yield
    finally:
        charts.render = original


def per_kind(
    drawn: list[tuple[str, charts.Chart, int]], rounds: int
) -> dict[rendering.Fonts, dict[str, list[float]]]:
    """Each picture made ``rounds`` times after a warm-up round: ms by fonts, kind.

    Each round makes every picture with the pages' fonts and with the system's,
    in turn (alternating which goes first).
    """
    times: dict[rendering.Fonts, dict[str, list[float]]] = {
        fonts: defaultdict(list) for fonts in FONTS
    }
    for round_ in range(rounds + 1):
        for fonts in FONTS if round_ % 2 == 0 else reversed(FONTS):
            with made_with(fonts):
                for kind, chart, width in drawn:
                    start = time.perf_counter()
                    charts.figure_svg(chart, width=width)
                    if round_:
                        times[fonts][kind].append(_ms(time.perf_counter() - start))
    return times


def as_of_views(history: list[ExperimentResult], days: int) -> dict[str, list[float]]:
    """A new as-of day's pictures, made one by one or all started at once (ms)."""
    result = history[-1]
    metric = result.results[0].metric.id
    variant = result.experiment.treatments[0]
    workers = rendering.WORKERS["own"]
    pool = ThreadPoolExecutor(workers)
    ways: dict[str, Callable[[list[charts.Chart]], object]] = {
        "one after another, one worker": lambda view: [
            charts.figure_svg(c, width=PAGE_WIDTH) for c in view
        ],
        f"all at once, {workers} workers": lambda view: [
            f.result()
            for f in [pool.submit(charts.figure_svg, c, width=PAGE_WIDTH) for c in view]
        ],
    }
    times: dict[str, list[float]] = defaultdict(list)
    for i in range(days + 1):  # the first day warms every worker, untimed
        until = history[: len(history) - 1 - i]
        view = [
            *charts.delta_forest(until[-1], result.experiment.decision),
            charts.cumulative_lift(until, metric, variant, "rel"),
        ]
        for name in list(ways) if i % 2 == 0 else reversed(ways):
            start = time.perf_counter()  # figure_svg keeps nothing: new each time
            ways[name](view)
            if i:
                times[name].append(_ms(time.perf_counter() - start))
    return times


def section(
    kinds: dict[rendering.Fonts, dict[str, list[float]]],
    views: dict[str, list[float]],
    pictures: int,
    rounds: int,
    started: dt.datetime,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    before, after = (" / ".join(f"{x:.2f}" for x in avg) for avg in load)
    lines = [
        HEADING,
        "",
        f"Reproduce: `{COMMAND}` (options: `--help`). Measured "
        f"{started:%Y-%m-%d %H:%M} UTC; load average (1 / 5 / 15 min) {before} "
        f"before, {after} after; nproc = {os.cpu_count()}; Python "
        f"{platform.python_version()}, vl-convert {vl_convert.__version__}.",
        "",
        f"The {pictures} pictures the pages draw on the bundled sample "
        "(`cxlab.charts.figure_svg` at the page's width, in the pictures' workers "
        f"of `cxlab.rendering`, warm): each made {rounds} times; median and max by "
        "kind of chart. Every one is made once per server process and kept "
        "(`cxlab.ui.drawing`); these are the costs of a first view. *System fonts*: "
        "the same pictures made by workers that see the system's fonts too, as they "
        "were before 2026-12-04 (their text measured in the system's copy of "
        "Liberation Sans, read from its file each time); rounds alternate between "
        "the two.",
        "",
        "| chart | pictures | median ms | max ms | median ms, system fonts |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, times in kinds["own"].items():
        lines.append(
            f"| {kind} | {len(times) // rounds} | {statistics.median(times):.0f} | "
            f"{max(times):.0f} | {statistics.median(kinds['system'][kind]):.0f} |"
        )
    lines += [
        "",
        f"A new as-of day of `{AS_OF_EXPERIMENT}` on the results page: its decision "
        "method's forests and its first metric's lift (three pictures), made one "
        "after another or all started at once, as the pages do "
        "(`cxlab.ui.drawing.start`); days alternated between the two, after one "
        "untimed day that warms both workers.",
        "",
        "| pictures of a new as-of day | days | median ms | max ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for way, times in views.items():
        lines.append(
            f"| {way} | {len(times)} | {statistics.median(times):.0f} | "
            f"{max(times):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds")
    parser.add_argument("--days", type=int, default=8, help="as-of days timed")
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave RESULTS.md alone"
    )
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    every = histories()
    drawn = page_charts(every)
    kinds = per_kind(drawn, args.rounds)
    views = as_of_views(every[AS_OF_EXPERIMENT], args.days)
    text = section(
        kinds,
        views,
        len(drawn),
        args.rounds,
        started,
        (load_before, os.getloadavg()),
    )
    print(text)
    if not args.no_write:
        write_section(RESULTS, HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
