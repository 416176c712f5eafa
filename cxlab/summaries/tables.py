"""What the reduction hands on: small tables and the names of their columns.

Every statistic, chart and page works from a :class:`Summaries`: per (experiment,
metric, variant, day) the cumulative sufficient statistics (``n`` and the sums),
per segment the same at the as-of day, the exposure flow, the health counts and
the ledger of what was set aside. :class:`ByDay` keeps what depends on the as-of
day as daily changes, so an earlier day needs no rescan (:mod:`.as_of`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from cxlab.metrics import RESPONDERS

# CUPED's sums of the pre-period covariates x₀ (and y₀ for a ratio) and their
# cross-products with the in-period x and y: pre_xy = Σx·x₀, pre_xy0 = Σx·y₀,
# pre_yx0 = Σy·x₀, pre_yy0 = Σy·y₀, pre_x0y0 = Σx₀·y₀.
CUPED_COLUMNS = (
    "pre_x",
    "pre_xx",
    "pre_xy",
    "pre_y",
    "pre_yy",
    "pre_x0y0",
    "pre_xy0",
    "pre_yx0",
    "pre_yy0",
)
SUM_COLUMNS = ("sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy", *CUPED_COLUMNS)
STAT_COLUMNS = ("n", *SUM_COLUMNS)
# The daily changes summed per (experiment, metric, variant, day): responders
# (for a type whose population they are), the sums and CUPED's sums that change
# with a user's values (the others enter with the user: the flow's).
DELTA_COLUMNS = [RESPONDERS, *SUM_COLUMNS]
DIMENSION_KEYS = ["experiment_id", "metric", "variant", "dimension", "segment"]
DIMENSION_SUMS = ["sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]
HEALTH_COUNTS = (
    "exposure_rows",
    "exposures_outside_window",
    "exposed_users",
    "multiple_exposures",
    "pre_exposure_events",
)
EXAMPLE_COLUMNS = ["timestamp", "user_id", "experiment_id", "variant"]
MISSING = "(missing)"
SEGMENT_PREFIX = "segment:"


@dataclass(frozen=True, slots=True)
class RowLedger:
    """Every row of the log in one bucket: ``used`` or one set-aside reason.

    ``used + sum(set_aside.values()) == rows`` (CONTRACT §1, the ledger).
    """

    rows: int
    used: int
    set_aside: dict[str, int]  # reason → rows, in the order of precedence
    examples: dict[str, pl.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogHealth:
    """What the whole log looks like (the data-health report)."""

    rows: int
    users: int | None  # None when not computed (log_health=False)
    first_event: dt.datetime | None
    last_event: dt.datetime | None
    events_by_type: pl.DataFrame
    exposures_by_variant: pl.DataFrame
    set_aside: dict[str, int]
    set_aside_examples: dict[str, pl.DataFrame] = field(default_factory=dict)
    ledger: RowLedger | None = None  # the whole log's (not after an as-of cut)


@dataclass(frozen=True, slots=True)
class ExperimentHealth:
    """Per experiment: exposure bookkeeping and what was set aside."""

    exposure_rows: int
    exposures_outside_window: int
    exposed_users: int
    multiple_exposures: int
    pre_exposure_events: int


@dataclass(frozen=True)
class ByDay:
    """What depends on the as-of day, kept as daily changes.

    Any earlier day of the analysed range is a sum over these (:func:`at_day`),
    so changing the as-of day needs no rescan.
    """

    dimensions: pl.DataFrame  # experiment, metric, variant, dimension, segment, day
    health: pl.DataFrame  # experiment_id, day: the ExperimentHealth counts' changes
    variants: pl.DataFrame  # experiment_id, variant, day: exposure rows and users
    # per assignment: uid, exposure/conflict day, before; None from an engine that
    # counts set-aside rows of the whole log only (the SQL engines), not by day
    pre_exposure: pl.DataFrame | None
    assigned_rows: pl.DataFrame | None  # day, rows of users entering an experiment
    keys: pl.DataFrame  # experiment, metric, variant, start: the daily table's rows


@dataclass(frozen=True)
class Summaries:
    """Small tables that every statistic, chart and page works from."""

    daily: pl.DataFrame
    by_dimension: pl.DataFrame
    exposures: pl.DataFrame
    health: dict[str, ExperimentHealth]
    as_of: dict[str, dt.date]
    log: LogHealth
    fingerprint: tuple = field(default=())
    by_day: ByDay | None = None
    categories: pl.DataFrame | None = None  # per category: daily changes (.voice)
    survival: pl.DataFrame | None = None  # times to an event: daily changes (.voice)
    comments: pl.DataFrame | None = None  # sampled NPS comments by day (.voice)
    words: pl.DataFrame | None = None  # detractors' words: daily changes (.voice)
    caps: pl.DataFrame | None = None  # capped means' caps from each day on (.cap)
    novelty: pl.DataFrame | None = None  # per exposure-age bucket (.novelty)
