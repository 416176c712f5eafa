"""From the SQL reduction's table of daily changes to :class:`Summaries`.

The SQL (:mod:`cxlab.sql.reduction`) leaves one long table of additive daily
changes (docs/summaries-format.md). Here it is split by ``kind`` into the frames
the Polars engine's own later stages take (:mod:`cxlab.summaries.daily`), so the
cumulation, the segment tables and the health counts are the same code whichever
engine reduced the log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from cxlab.config import Catalog, Experiment, MetricDef
from cxlab.errors import InputError
from cxlab.metrics import RESPONDERS, metric_type
from cxlab.sql.reduction import ADDED_COLUMNS, KINDS, OUTPUT_COLUMNS
from cxlab.summaries import ByDay, LogHealth, Summaries
from cxlab.summaries.as_of import health_at, variants_at
from cxlab.summaries.cap import CAP_SCHEMA
from cxlab.summaries.daily import (
    as_of_day,
    cumulate,
    dimension_deltas,
    dimension_table,
    grid_keys,
    health_by_day,
    variants_by_day,
)
from cxlab.summaries.tables import CUPED_COLUMNS, DELTA_COLUMNS
from cxlab.summaries.voice import CATEGORY_SCHEMA, SURVIVAL_SCHEMA

ARM = ["experiment_id", "variant", "day"]
METRIC = ["experiment_id", "metric", "variant", "day"]
COUNTS = [
    "entered",
    "conflicts",
    "pre_exposure_events",
    "exposure_rows",
    "in_window_rows",
    "first_seen",
]
SUMS = ["responders", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]
PRE = list(CUPED_COLUMNS)
DETAIL = ["first_category"]
CATEGORY = ["experiment_id", "metric", "variant", "category", "day"]


def check_changes(changes: pl.DataFrame, label: str) -> pl.DataFrame:
    """The table with the documented columns and kinds, typed.

    The columns added to the format later (:data:`ADDED_COLUMNS`) may be absent
    (a table of an earlier version): they read as NULL.

    Raises:
        InputError: a missing column or an unknown kind, naming the file.
    """
    changes = changes.with_columns(
        pl.lit(None, pl.String if OUTPUT_COLUMNS[c] == "VARCHAR" else pl.Float64).alias(
            c
        )
        for c in ADDED_COLUMNS
        if c not in changes.columns
    )
    missing = [c for c in OUTPUT_COLUMNS if c not in changes.columns]
    if missing:
        raise InputError(
            f"{label}: not a summaries table: no column {', '.join(missing)} "
            "(see docs/summaries-format.md)"
        )
    kinds = set(changes["kind"].unique().to_list()) - set(KINDS)
    if kinds:
        raise InputError(
            f"{label}: column 'kind' has unknown value(s) "
            f"{', '.join(sorted(map(str, kinds)))} (expected {', '.join(KINDS)})"
        )
    day = pl.col("day")
    return changes.select(
        pl.col(
            "kind",
            "experiment_id",
            "variant",
            "metric",
            "dimension",
            "segment",
            "category",
        ).cast(pl.String),
        day.str.to_date() if changes.schema["day"] == pl.String else day.cast(pl.Date),
        pl.col([*COUNTS, "minutes", "state", "state_users"]).cast(pl.Int64),
        pl.col([*SUMS, *PRE, *DETAIL, "cap"]).cast(pl.Float64),
    )


def _of_kind(changes: pl.DataFrame, kind: str, keys: Sequence[str]) -> pl.DataFrame:
    """The rows of a kind, summed per key (rows of one key add up)."""
    rows = changes.filter(pl.col("kind") == kind)
    values = [c for c in [*COUNTS, *SUMS, *PRE, *DETAIL] if c not in keys]
    return rows.group_by(keys, maintain_order=True).agg(
        pl.col(values).fill_null(0).sum()
    )


def entry_columns(metric: MetricDef) -> tuple[str, ...]:
    """The CUPED sums a user of the metric brings on entering (the registry's)."""
    zero = pl.lit(0.0)
    return tuple(metric_type(metric).entry_sums({"x0": zero, "y0": zero}))


def _deltas(
    metric: pl.DataFrame,
    keys: Sequence[str] = ARM,
    entry: Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """Per (experiment, metric, variant[, segment], day): the sums' changes.

    The pre-period sums a user brings on entering (``entry``: metric id → its
    entry sums, e.g. x₀, x₀²) travel in the flow (:func:`_flow`), as the Polars
    engine's entry sums do, so they are zero here.
    """
    entry = entry or {}

    def change(c: str) -> pl.Expr:
        if c not in metric.columns:
            return pl.lit(0.0).alias(c)
        entering = [m for m, columns in entry.items() if c in columns]
        return (
            pl.when(pl.col("metric").is_in(entering))
            .then(0.0)
            .otherwise(pl.col(c))
            .alias(c)
        )

    return metric.select(
        *keys,
        "metric",
        pl.col("responders").alias(RESPONDERS),
        *[change(c) for c in DELTA_COLUMNS if c != RESPONDERS],
    )


def _flow(
    arm: pl.DataFrame, metric: pl.DataFrame, entry: Mapping[str, Sequence[str]]
) -> pl.DataFrame:
    """Users in and out per (experiment, variant, day), with pre-period sums wide.

    The entry sums of metric m are the columns "m:<sum>", on the days they move.
    """
    moves = arm.filter((pl.col("entered") != 0) | (pl.col("conflicts") != 0)).select(
        *ARM,
        (pl.col("entered") - pl.col("conflicts")).cast(pl.Int32).alias("d_users"),
        pl.col("conflicts").cast(pl.Int32).alias("d_conflicts"),
    )
    for m in metric["metric"].unique(maintain_order=True).to_list():
        columns = entry.get(m, ())
        if not columns:
            continue
        moved = pl.any_horizontal(pl.col(c) != 0 for c in columns)
        wide = metric.filter((pl.col("metric") == m) & moved).select(
            *ARM, *[pl.col(c).alias(f"{m}:{c}") for c in columns]
        )
        if wide.height:
            moves = moves.join(wide, on=ARM, how="left")
    return moves


def _dimensions(
    changes: pl.DataFrame, experiments: Sequence[Experiment]
) -> pl.DataFrame:
    """Per segment: the summed changes and the users in and out, by day."""
    keys = ["experiment_id", "variant", "segment", "day"]
    users = _of_kind(changes, "segment_arm", ["dimension", *keys])
    sums = _of_kind(changes, "segment_metric", ["dimension", "metric", *keys])
    parts = []
    for d in dict.fromkeys(x for e in experiments for x in e.dimensions):
        counts = users.filter(pl.col("dimension") == d).select(
            *keys, (pl.col("entered") - pl.col("conflicts")).alias("users")
        )
        deltas = _deltas(sums.filter(pl.col("dimension") == d), keys)
        parts.append((d, deltas, counts))
    return dimension_deltas(parts, experiments)


def _categories(changes: pl.DataFrame) -> pl.DataFrame:
    """The categorical metrics' table of daily changes (as :mod:`.voice` makes it)."""
    rows = _of_kind(changes, "category", CATEGORY)
    return (
        rows.select(
            *CATEGORY,
            "sum_x",
            "sum_xx",
            pl.col("first_category").alias("first"),
        )
        .cast(dict(CATEGORY_SCHEMA))
        .sort(CATEGORY)
    )


def _caps(changes: pl.DataFrame) -> pl.DataFrame:
    """The capped means' caps per (experiment, metric, day) (as :mod:`.cap`)."""
    rows = changes.filter(pl.col("kind") == "cap").select(*CAP_SCHEMA)
    return rows.cast(dict(CAP_SCHEMA)).sort("experiment_id", "metric", "day")


def _survival(changes: pl.DataFrame) -> pl.DataFrame:
    """The time_to_event metrics' state counts' daily changes (as :mod:`.voice`)."""
    keys = ["experiment_id", "metric", "variant", "day", "minutes", "kind"]
    rows = changes.filter(pl.col("kind") == "survival").select(
        "experiment_id",
        "metric",
        "variant",
        "day",
        "minutes",
        pl.col("state").alias("kind"),
        pl.col("state_users").alias("users"),
    )
    summed = rows.group_by(keys).agg(pl.col("users").sum())
    return (
        summed.filter(pl.col("users") != 0)
        .select(*SURVIVAL_SCHEMA)
        .cast(dict(SURVIVAL_SCHEMA))
        .sort(keys)
    )


def summaries_from_changes(
    changes: pl.DataFrame,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None,
    log: LogHealth | None = None,
    fingerprint: tuple = (),
) -> Summaries:
    """The summaries of the experiments from the SQL reduction's output.

    Args:
        changes: the reduction's table (:data:`OUTPUT_COLUMNS`), checked.
        experiments: the experiments it was built for.
        catalog: the metric catalog.
        as_of: the as-of day it was cut at, if any.
        log: what the engine knows of the whole log; without it, the log's last
            day comes from the table's ``log`` row and the rest is unknown.
        fingerprint: the log's fingerprint (provenance).

    Returns:
        The summaries, with their daily changes (``by_day``), so an earlier
        as-of day is a cut (:func:`cxlab.summaries.at_day`), not a rescan; the
        SQL counts set-aside rows of the whole log only (``log``), not by day,
        so a cut has none.
    """
    arm = _of_kind(changes, "arm", ARM)
    metric = _of_kind(changes, "metric", METRIC)
    last = changes.filter(pl.col("kind") == "log")["day"].max()
    last_day = last if isinstance(last, dt.date) else None
    exposure_days = arm.filter(pl.col("exposure_rows") > 0).select(
        *ARM, "exposure_rows", "in_window_rows"
    )
    users_by_day = arm.filter(pl.col("first_seen") > 0).select(
        *ARM, pl.col("first_seen").alias("users")
    )
    people = arm.group_by("experiment_id", "day").agg(
        pl.col("entered").sum().alias("exposed_users"),
        pl.col("pre_exposure_events").sum(),
        pl.col("conflicts").sum().alias("multiple_exposures"),
    )
    health_daily = health_by_day(exposure_days, people)
    ids = [e.id for e in experiments]
    entry = {
        m: entry_columns(catalog[m])
        for m in metric["metric"].unique().to_list()
        if m in catalog
    }
    flow = _flow(arm, metric, entry)
    dimensions = _dimensions(changes, experiments)
    as_of_by_exp = {e.id: as_of_day(e, as_of, last_day) for e in experiments}
    variants = variants_by_day(exposure_days, users_by_day)
    if log is None:
        moment = dt.datetime.combine(last_day, dt.time(), dt.UTC) if last_day else None
        log = LogHealth(
            rows=0,
            users=None,
            first_event=None,
            last_event=moment,
            events_by_type=pl.DataFrame(schema={"event": pl.String, "rows": pl.UInt32}),
            exposures_by_variant=variants_at(variants),
            set_aside={},
        )
    return Summaries(
        daily=cumulate(
            _deltas(metric, ARM, entry), flow, experiments, catalog, as_of_by_exp
        ),
        by_dimension=dimension_table(dimensions, catalog),
        exposures=flow.select(*ARM, "d_users", "d_conflicts").sort(ARM),
        health=health_at(ids, health_daily, None),
        as_of=as_of_by_exp,
        log=log,
        fingerprint=fingerprint,
        by_day=ByDay(
            dimensions=dimensions,
            health=health_daily,
            variants=variants,
            pre_exposure=None,
            assigned_rows=None,
            keys=grid_keys(experiments),
        ),
        categories=_categories(changes),
        caps=_caps(changes),
        survival=_survival(changes),
    )


def read_summaries(
    path: str | Path,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
) -> dict[str, Summaries]:
    """Summaries per experiment from a table the printed SQL made (CSV or Parquet).

    Raises:
        InputError: the file cannot be read, is not such a table, or holds no
            rows of an experiment asked for.
    """
    file = Path(path)
    try:
        if file.suffix.lower() == ".csv":
            table = pl.read_csv(file, infer_schema_length=None)
        else:
            table = pl.read_parquet(file)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{file}: cannot read the summaries table: {exc}") from exc
    changes = check_changes(table, str(file))
    present = set(changes["experiment_id"].drop_nulls().to_list())
    for e in experiments:
        if e.id not in present:
            raise InputError(
                f"{file}: no rows of experiment '{e.id}' "
                "(make the table with `cxlab sql` for it)"
            )
    stat = file.stat()
    summaries = summaries_from_changes(
        changes,
        experiments,
        catalog,
        as_of=as_of,
        fingerprint=((str(file), stat.st_size, stat.st_mtime_ns),),
    )
    return {e.id: summaries for e in experiments}
