"""Stage 2b, the detail tables: per-category sums and times to an event, by day.

Two metric types need more than one row of sums per (variant, day):

* ``categorical``: per category, each user's count of the metric's events of
  that category (x) is summed as Σx and Σx², and each user's FIRST category is
  counted (``first``), for the composition test. Kept as daily changes per
  (experiment, metric, variant, category, day), like the daily sums: a user's
  counts enter on the day of each event and, for a user who meets a second
  variant, are taken back on that day.
* ``time_to_event``: each user's time from their first start event to the next
  end event, in whole minutes (rounded up), censored at the as-of moment while
  still open: the end of the as-of day, or earlier the experiment's end or the
  log's last event. A time past the horizon is censored at the horizon. A
  user's state as of a day is (minutes, kind), ``kind`` one of :data:`OPEN`,
  :data:`RESOLVED` and :data:`LATE` (resolved after the horizon); it changes
  while the contact is open (its censoring time grows with the as-of day) until
  it is resolved or reaches the horizon. The table keeps the changes of the
  states' counts per (experiment, metric, variant, day, minutes, kind): any
  day's Kaplan–Meier counts are their sum up to that day, so an earlier as-of
  day (:func:`cxlab.summaries.at_day`) and every day of a history need no
  rescan. Rows per user: at most the days until the horizon, plus two.

NPS answers may carry a free-text ``comment`` (CONTRACT §2). Of an analysed
user's counted answers with one (in the window, before any day they met a
second variant), :func:`comment_tables` keeps

* the words of detractors' comments (0-6), counted per (experiment, metric,
  variant, day, word) as daily changes, taken back on the day a user meets a
  second variant: lowercase runs of letters (and apostrophes), without
  :data:`STOP_WORDS` and one-letter words;
* a reproducible sample of promoters' (9-10) and detractors' comments: each
  answer gets a key, a hash of its user id and time (fixed seed, stable for a
  given Polars version); per (experiment, metric, variant, band, day) the
  :data:`SAMPLE_PER_DAY` lowest keys are kept, and every answer of a user who
  meets a second variant. The lowest keys as of any day are among them, so a
  sample read at an earlier day (:func:`comments_at`) equals a fresh scan's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from cxlab.attribution import USER_CHECK, USER_CODE
from cxlab.config import Catalog
from cxlab.metrics import (
    END_PREFIX,
    NPS_PASSIVE_MIN,
    NPS_PROMOTER_MIN,
    START_PREFIX,
    Nps,
    category_column,
    metric_type,
)
from cxlab.summaries.users import with_user

OPEN, RESOLVED, LATE = 0, 1, 2
GONE = -1  # the user left the analysis (met a second variant)
CATEGORY_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    "variant": pl.String,
    "category": pl.String,
    "day": pl.Date,
    "sum_x": pl.Float64,
    "sum_xx": pl.Float64,
    "first": pl.Float64,
}
SURVIVAL_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    "variant": pl.String,
    "day": pl.Date,
    "minutes": pl.Int64,
    "kind": pl.Int8,
    "users": pl.Int64,
}
MICROSECOND = dt.timedelta(microseconds=1)
PROMOTER, DETRACTOR = "promoter", "detractor"
SAMPLE_PER_DAY = 5
SAMPLE_SEED = 20_080_417
WORD = r"\p{L}[\p{L}']*"
STOP_WORDS = frozenset(
    """a an and are as at be been but by did do does for from had has have i if in
    is it it's its just me my no not of on or so that the their them they this to
    too was we were what when with you your i'm i've don't didn't""".split()  # noqa: SIM905
)
COMMENT_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    "variant": pl.String,
    "band": pl.String,
    "day": pl.Date,
    "conflict_day": pl.Date,
    "key": pl.UInt64,
    "comment": pl.String,
}
WORD_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    "variant": pl.String,
    "day": pl.Date,
    "word": pl.String,
    "count": pl.Int64,
}


def category_changes(
    rows: pl.DataFrame,
    users: pl.DataFrame,
    catalog: Catalog,
    metric_users: Mapping[str, Sequence[str]],
) -> pl.DataFrame:
    """Per (experiment, metric, variant, category, day): the changes of Σx, Σx², first.

    Args:
        rows: the counted rows with a detail value: ``uk``, ``day`` and the
            detail columns, ordered by (uk, time).
        users: the assignments (``uk``, ``experiment_id``, ``variant``,
            ``conflict_day``).
        catalog: the metric catalog.
        metric_users: metric id → ids of the experiments that analyse it.
    """
    frames = []
    for metric_id, exp_ids in metric_users.items():
        if metric_type(catalog[metric_id]).detail == "categories":
            column = category_column(catalog[metric_id])
            frames.append(_categories_of(rows, users, metric_id, exp_ids, column))
    return pl.concat(
        [pl.DataFrame(schema=CATEGORY_SCHEMA), *frames], how="vertical_relaxed"
    )


def _categories_of(
    rows: pl.DataFrame,
    users: pl.DataFrame,
    metric_id: str,
    exp_ids: Sequence[str],
    column: str,
) -> pl.DataFrame:
    conflict = pl.col("conflict_day")
    kept = conflict.is_null() | (pl.col("day") < conflict)
    events = with_user(
        rows.filter(pl.col(column).is_not_null()).select(
            "uk", "day", pl.col(column).alias("category")
        ),
        users,
        ["experiment_id", "variant", "conflict_day"],
        "uk",
    ).filter(pl.col("experiment_id").is_in(exp_ids) & kept)
    keys = ["experiment_id", "variant", "category"]
    per_day = (
        events.group_by("uk", *keys, "day", maintain_order=True)
        .agg(pl.len().cast(pl.Float64).alias("sum_x"))
        .sort("uk", "category", "day", maintain_order=True)
        .with_columns(pl.col("sum_x").cum_sum().over("uk", "category").alias("total"))
    )
    # A user's x² grows from (total − today)² to total².
    counted = per_day.select(
        *keys,
        "day",
        "sum_x",
        (pl.col("total") ** 2 - (pl.col("total") - pl.col("sum_x")) ** 2).alias(
            "sum_xx"
        ),
        pl.lit(0.0).alias("first"),
    )
    retired = (
        per_day.group_by("uk", *keys)
        .agg(pl.col("total").last())
        .join(events.select("uk", "conflict_day").unique("uk"), on="uk")
        .filter(conflict.is_not_null())
        .select(
            *keys,
            conflict.alias("day"),
            (-pl.col("total")).alias("sum_x"),
            (-(pl.col("total") ** 2)).alias("sum_xx"),
            pl.lit(0.0).alias("first"),
        )
    )
    first = events.unique("uk", keep="first", maintain_order=True)
    firsts = pl.concat(
        [
            first.select(*keys, "day", pl.lit(1.0).alias("first")),
            first.filter(conflict.is_not_null()).select(
                *keys, conflict.alias("day"), pl.lit(-1.0).alias("first")
            ),
        ]
    ).with_columns(pl.lit(0.0).alias("sum_x"), pl.lit(0.0).alias("sum_xx"))
    return (
        pl.concat([counted, retired, firsts], how="diagonal")
        .group_by(*keys, "day")
        .agg(pl.col("sum_x", "sum_xx", "first").sum())
        .select(
            "experiment_id",
            pl.lit(metric_id).alias("metric"),
            "variant",
            "category",
            "day",
            "sum_x",
            "sum_xx",
            "first",
        )
        .sort("experiment_id", "variant", "category", "day")
    )


def survival_changes(
    rows: pl.DataFrame,
    users: pl.DataFrame,
    catalog: Catalog,
    metric_users: Mapping[str, Sequence[str]],
    last_event: dt.datetime | None,
) -> pl.DataFrame:
    """Per (experiment, metric, variant, day, minutes, kind): users in less users out.

    Args:
        rows: the counted rows with a detail value, ordered by (uk, time).
        users: the assignments (``uk``, ``experiment_id``, ``variant``,
            ``conflict_day``, ``window_end``).
        catalog: the metric catalog.
        metric_users: metric id → ids of the experiments that analyse it.
        last_event: the log's last event: no contact is known to be open later.
    """
    frames = []
    for metric_id, exp_ids in metric_users.items():
        metric = catalog[metric_id]
        if metric_type(metric).detail == "survival":
            horizon = round(float(metric.horizon_hours or 0) * 60)
            frames.append(
                _survival_of(rows, users, metric_id, exp_ids, horizon, last_event)
            )
    return pl.concat(
        [pl.DataFrame(schema=SURVIVAL_SCHEMA), *frames], how="vertical_relaxed"
    )


def _minutes(duration: pl.Expr) -> pl.Expr:
    """A duration in whole minutes, rounded up."""
    return (duration.dt.total_microseconds() + 59_999_999) // 60_000_000


def _survival_of(
    rows: pl.DataFrame,
    users: pl.DataFrame,
    metric_id: str,
    exp_ids: Sequence[str],
    horizon: int,
    last_event: dt.datetime | None,
) -> pl.DataFrame:
    start, end = pl.col(START_PREFIX + metric_id), pl.col(END_PREFIX + metric_id)
    first_start = pl.col("pos").filter(start.is_not_null()).min()
    times = with_user(
        rows.filter(start.is_not_null() | end.is_not_null())
        .with_row_index("pos")
        .group_by("uk", maintain_order=True)
        .agg(
            start.drop_nulls().first().alias("start"),
            end.filter(pl.col("pos") > first_start).drop_nulls().first().alias("end"),
        )
        .filter(pl.col("start").is_not_null()),
        users,
        ["experiment_id", "variant", "conflict_day", "window_end"],
        "uk",
    ).filter(pl.col("experiment_id").is_in(exp_ids))
    final = pl.col("window_end")
    if last_event is not None:
        final = pl.min_horizontal(final, pl.lit(last_event))
    s, conflict = pl.col("start"), pl.col("conflict_day")
    reach = s + pl.duration(minutes=horizon)
    resolved_day = pl.col("end").dt.date()
    horizon_day = pl.when(final >= reach).then((reach - MICROSECOND).dt.date())
    last_day = (final - MICROSECOND).dt.date()
    stop = pl.min_horizontal(resolved_day, horizon_day, last_day, conflict)
    timed = times.with_columns(
        s.dt.date().alias("first_day"), stop.alias("stop"), final.alias("final")
    ).filter(conflict.is_null() | (pl.col("first_day") < conflict))
    # The days a user's state can change: each day to the first of (resolved,
    # horizon reached, last day, excluded), then the day resolved or excluded.
    days = pl.concat(
        [
            timed.with_columns(pl.date_ranges("first_day", "stop").alias("day")),
            timed.with_columns(pl.concat_list(resolved_day, conflict).alias("day")),
        ]
    ).explode("day")
    days = days.filter(
        pl.col("day").is_not_null() & (pl.col("day") <= pl.col("final").dt.date())
    ).unique(["uk", "day"])
    as_of_moment = pl.min_horizontal(
        pl.col("day").cast(pl.Datetime("us", "UTC")) + pl.duration(days=1), "final"
    )
    done = pl.col("end").is_not_null() & (pl.col("day") >= resolved_day)
    taken = _minutes(pl.col("end") - s)
    states = days.sort("uk", "day").select(
        "uk",
        "experiment_id",
        "variant",
        "day",
        pl.when(done)
        .then(pl.min_horizontal(taken, horizon))
        .otherwise(pl.min_horizontal(_minutes(as_of_moment - s), horizon))
        .alias("minutes"),
        pl.when(conflict.is_not_null() & (pl.col("day") >= conflict))
        .then(GONE)
        .when(done & (taken <= horizon))
        .then(RESOLVED)
        .when(done)
        .then(LATE)
        .otherwise(OPEN)
        .cast(pl.Int8)
        .alias("kind"),
    )
    same_user = pl.col("uk") == pl.col("uk").shift(1)
    keys = ["experiment_id", "variant", "day", "minutes", "kind"]
    entering = states.filter(pl.col("kind") != GONE).select(
        *keys, pl.lit(1).alias("users")
    )
    leaving = (
        states.with_columns(
            pl.col("minutes").shift(1).alias("prev_minutes"),
            pl.col("kind").shift(1).alias("prev_kind"),
            same_user.alias("same"),
        )
        .filter(pl.col("same") & (pl.col("prev_kind") != GONE))
        .select(
            "experiment_id",
            "variant",
            "day",
            pl.col("prev_minutes").alias("minutes"),
            pl.col("prev_kind").alias("kind"),
            pl.lit(-1).alias("users"),
        )
    )
    return (
        pl.concat([entering, leaving], how="vertical_relaxed")
        .group_by(keys)
        .agg(pl.col("users").sum())
        .filter(pl.col("users") != 0)
        .select(
            "experiment_id",
            pl.lit(metric_id).alias("metric"),
            "variant",
            "day",
            pl.col("minutes").cast(pl.Int64),
            pl.col("kind").cast(pl.Int8),
            pl.col("users").cast(pl.Int64),
        )
        .sort("experiment_id", "variant", "day", "minutes", "kind")
    )


def comment_tables(
    comments: pl.DataFrame,
    users: pl.DataFrame,
    catalog: Catalog,
    metric_users: Mapping[str, Sequence[str]],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sampled comments and the detractors' word counts (module docstring).

    Args:
        comments: the scan's NPS answers with a comment (time, user codes, user
            id, event, value, comment, filter columns).
        users: the assignments (user codes, ``experiment_id``, ``variant``,
            ``first_exposure``, ``window_end``, ``conflict_day``).
        catalog: the metric catalog.
        metric_users: metric id → ids of the experiments that analyse it.

    Returns:
        (comments per :data:`COMMENT_SCHEMA`, word changes per :data:`WORD_SCHEMA`).
    """
    samples, words = (
        [pl.DataFrame(schema=COMMENT_SCHEMA)],
        [pl.DataFrame(schema=WORD_SCHEMA)],
    )
    for metric_id, exp_ids in metric_users.items():
        metric = catalog[metric_id]
        if not comments.height or not isinstance(metric_type(metric), Nps):
            continue
        (answer,) = metric_type(metric).components(metric)
        counted = (
            comments.join(
                users.select(
                    USER_CODE,
                    USER_CHECK,
                    "experiment_id",
                    "variant",
                    "first_exposure",
                    "window_end",
                    "conflict_day",
                ),
                on=[USER_CODE, USER_CHECK],
            )
            .filter(
                pl.col("experiment_id").is_in(exp_ids)
                & answer.condition()
                & (pl.col("timestamp") >= pl.col("first_exposure"))
                & (pl.col("timestamp") < pl.col("window_end"))
            )
            .with_columns(pl.col("timestamp").dt.date().alias("day"))
            .filter(
                pl.col("conflict_day").is_null()
                | (pl.col("day") < pl.col("conflict_day"))
            )
            .with_columns(
                pl.lit(metric_id).alias("metric"),
                pl.when(pl.col("value") >= NPS_PROMOTER_MIN)
                .then(pl.lit(PROMOTER))
                .when(pl.col("value") < NPS_PASSIVE_MIN)
                .then(pl.lit(DETRACTOR))
                .alias("band"),
            )
            .filter(pl.col("band").is_not_null())
        )
        samples.append(_sample(counted))
        words.append(_word_changes(counted.filter(pl.col("band") == DETRACTOR)))
    return (
        pl.concat(samples, how="vertical_relaxed"),
        pl.concat(words, how="vertical_relaxed"),
    )


def _sample(counted: pl.DataFrame) -> pl.DataFrame:
    """Per (experiment, metric, variant, band, day) the lowest keys, and conflicts'."""
    key = pl.concat_str(
        pl.col("user_id").cast(pl.String), pl.col("timestamp").cast(pl.String)
    ).hash(seed=SAMPLE_SEED)
    keys = ["experiment_id", "metric", "variant", "band", "day"]
    keyed = counted.with_columns(key.alias("key"))
    conflicted = pl.col("conflict_day").is_not_null()
    lowest = keyed.filter(~conflicted).filter(
        pl.col("key").rank("ordinal").over(keys) <= SAMPLE_PER_DAY
    )
    return (
        pl.concat([lowest, keyed.filter(conflicted)])
        .select(*COMMENT_SCHEMA)
        .sort(*keys[:-1], "key")
    )


def _word_changes(detractors: pl.DataFrame) -> pl.DataFrame:
    """Word counts of detractors' comments by day; a conflict takes them back."""
    keys = ["experiment_id", "metric", "variant"]
    tokens = (
        detractors.select(
            *keys,
            "day",
            "conflict_day",
            pl.col("comment").str.to_lowercase().str.extract_all(WORD).alias("word"),
        )
        .explode("word")
        .filter(
            (pl.col("word").str.len_chars() > 1)
            & ~pl.col("word").is_in(list(STOP_WORDS))
        )
    )
    taken_back = tokens.filter(pl.col("conflict_day").is_not_null()).select(
        *keys, pl.col("conflict_day").alias("day"), "word", pl.lit(-1).alias("count")
    )
    return (
        pl.concat(
            [tokens.select(*keys, "day", "word", pl.lit(1).alias("count")), taken_back]
        )
        .group_by(*keys, "day", "word")
        .agg(pl.col("count").sum().cast(pl.Int64))
        .select(*WORD_SCHEMA)
        .sort(*keys, "day", "word")
    )


def comments_at(sample: pl.DataFrame, day: dt.date, per_band: int) -> pl.DataFrame:
    """The sampled comments as of the end of ``day``: the lowest keys per band.

    Answers of users who met a second variant by then are left out.
    """
    kept = sample.filter(
        (pl.col("day") <= day)
        & (pl.col("conflict_day").is_null() | (pl.col("conflict_day") > day))
    )
    keys = ["experiment_id", "metric", "variant", "band"]
    return (
        kept.sort(*keys, "key")
        .group_by(keys, maintain_order=True)
        .head(per_band)
        .select(*keys, "comment")
    )
