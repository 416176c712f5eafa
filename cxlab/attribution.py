"""Who is in which experiment, from when, and which outcome rows count (CONTRACT §1).

A user enters an experiment at their first in-window exposure. A user who is later
exposed to a different variant is excluded from the moment that second variant
appears (so a daily history shows them where they stood that day) and is counted in
``multiple_exposures``. Dimension values come from the first exposure row.

Outcome rows are matched to assignments by position, not by a join: the outcome
rows are sorted once by (user, time, log order), so the rows of one user that fall
in an assignment's window are one contiguous slice ``[lo, hi)``. One vectorised
binary search (:func:`locate`) finds every slice; expanding them gives the
(assignment, row) pairs that count, without materialising the user × experiment join.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from cxlab.config import Experiment

UTC_DAY = dt.timedelta(days=1)
OPEN_END = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
DIM_PREFIX = "dim:"
USER_CODE = "uid"
USER_CHECK = "uid_check"


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def analysis_cutoff(experiment: Experiment, as_of: dt.date | None) -> dt.datetime:
    """The first instant not analysed: the end of the end day or of the as-of day."""
    ends = [d for d in (experiment.end, as_of) if d is not None]
    return _utc_midnight(min(ends)) + UTC_DAY if ends else OPEN_END


def experiment_windows(
    experiments: Sequence[Experiment], as_of: dt.date | None
) -> pl.DataFrame:
    """One row per experiment: its id, analysis window and CUPED pre-period."""
    return pl.DataFrame(
        {
            "experiment_id": [e.id for e in experiments],
            "experiment_index": list(range(len(experiments))),
            "window_start": [_utc_midnight(e.start) for e in experiments],
            "window_end": [analysis_cutoff(e, as_of) for e in experiments],
            "cuped_days": [e.cuped_days for e in experiments],
        },
        schema={
            "experiment_id": pl.String,
            "experiment_index": pl.UInt32,
            "window_start": pl.Datetime("us", "UTC"),
            "window_end": pl.Datetime("us", "UTC"),
            "cuped_days": pl.Int64,
        },
    )


def flag_windows(exposures: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Exposure rows in log order, with their window and an ``in_window`` flag."""
    in_window = (pl.col("timestamp") >= pl.col("window_start")) & (
        pl.col("timestamp") < pl.col("window_end")
    )
    return exposures.join(
        windows, on="experiment_id", how="inner", maintain_order="left"
    ).with_columns(in_window.alias("in_window"))


@dataclass(frozen=True)
class Attribution:
    """The assignments, and who first saw each variant on which day."""

    assignments: pl.DataFrame  # one row per exposed (experiment, user)
    first_seen: pl.DataFrame  # experiment_index, variant, day: users first seeing it


def attribute_exposures(
    exposures: pl.DataFrame, dimensions: Sequence[str]
) -> Attribution:
    """First in-window exposure per (experiment, user), with the moment of any conflict.

    The in-window rows are ordered by (experiment, user, time, log order) with
    stable sorts on integer keys; each run of one (experiment, user) then starts
    with its first exposure, and its first row of another variant is the conflict.

    Args:
        exposures: exposure rows in log order, from :func:`flag_windows`, with
            the :func:`user_codes` columns.
        dimensions: dimension names to carry.

    Returns:
        The assignments: one row per exposed user and experiment:
        ``first_exposure``, ``variant`` (of the first exposure; simultaneous
        exposures resolve in log order), ``conflict_at`` (the first exposure to
        another variant, null if none), dimension values of the first exposure
        row as ``dim:<name>``, and the experiment's window columns. And
        ``first_seen``: per (experiment, variant, day), the users whose first
        in-window exposure to that variant fell on the day (a user who saw two
        variants counts for each).
    """
    starts = _differs("experiment_index") | _differs(USER_CODE)
    runs = (
        exposures.filter(pl.col("in_window"))
        .sort("timestamp", maintain_order=True)
        .sort(USER_CODE, maintain_order=True)
        .sort("experiment_index", maintain_order=True)
        .with_columns(starts.alias("starts"))
        .with_columns(pl.col("starts").cum_sum().alias("run"))
    )
    _check_codes(runs, ~pl.col("starts"))
    first_variant = pl.when("starts").then(pl.col("variant")).forward_fill()
    others = runs.filter(pl.col("variant") != first_variant)
    conflicts = others.unique("run", keep="first", maintain_order=True).select(
        "run", pl.col("timestamp").alias("conflict_at")
    )
    firsts = runs.filter("starts")
    # Each run's first row of each variant: its start, and the few other variants'.
    seen = pl.concat([firsts, others.unique(["run", "variant"], keep="first")]).select(
        "experiment_index", "variant", pl.col("timestamp").dt.date().alias("day")
    )
    assignments = (
        firsts.join(conflicts, on="run", how="left", maintain_order="left")
        .select(
            "experiment_id",
            "user_id",
            USER_CODE,
            USER_CHECK,
            pl.col("timestamp").alias("first_exposure"),
            "variant",
            "conflict_at",
            "window_end",
            "cuped_days",
            *[pl.col(d).alias(DIM_PREFIX + d) for d in dimensions],
        )
        .with_columns(
            pl.col("first_exposure").dt.date().alias("exposure_day"),
            pl.col("conflict_at").dt.date().alias("conflict_day"),
        )
    )
    first_seen = seen.group_by("experiment_index", "variant", "day").agg(
        pl.len().alias("users")
    )
    return Attribution(assignments, first_seen)


# --- user codes ----------------------------------------------------------------------


class UserCodeCollisionError(Exception):
    """Two different user ids share a hash code (then exact codes are used)."""


def user_codes(*, exact: bool = False) -> list[pl.Expr]:
    """Integers per ``user_id`` to sort and search on: a code and a check.

    By default two independent 64-bit hashes (nearly free): rows grouped as one
    user by the code must agree on the check, else :class:`UserCodeCollisionError`
    (two ids sharing both hashes is a 2⁻¹²⁸ event), and the caller asks for
    ``exact`` codes: a categorical's dictionary index, exact but slower.
    """
    if exact:
        codes = pl.col("user_id").cast(pl.Categorical).to_physical().cast(pl.UInt64)
        return [codes.alias(USER_CODE), codes.alias(USER_CHECK)]
    return [
        pl.col("user_id").hash(seed=0).alias(USER_CODE),
        pl.col("user_id").hash(seed=1).alias(USER_CHECK),
    ]


def _differs(column: str) -> pl.Expr:
    """True where a row's value differs from the previous row's (and on the first)."""
    return (pl.col(column) != pl.col(column).shift(1)).fill_null(True)


def _check_codes(frame: pl.DataFrame, same_user: pl.Expr) -> None:
    """Raise UserCodeCollisionError if rows taken as one user's disagree."""
    if frame.select((same_user & _differs(USER_CHECK)).any()).item():
        raise UserCodeCollisionError


# --- outcome rows by position --------------------------------------------------------


def check_sorted_codes(outcomes: pl.DataFrame) -> None:
    """Raise UserCodeCollisionError if rows sorted by code hold two user ids."""
    _check_codes(outcomes, ~_differs(USER_CODE))


def first_at_or_after(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Per query, the first index i in [lo, hi) with values[i] >= target, else hi.

    A vectorised binary search over sorted slices of ``values`` (one slice per
    query): ⌈log2(longest slice)⌉ rounds of numpy operations, not a row loop.
    """
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    open_ = np.flatnonzero(lo < hi)
    while open_.size:  # only the queries still open: most slices are short
        mid = (lo[open_] + hi[open_]) // 2
        below = values[mid] < targets[open_]
        lo[open_[below]] = mid[below] + 1
        hi[open_[~below]] = mid[~below]
        open_ = open_[lo[open_] < hi[open_]]
    return lo


def user_runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code, first row, end row) of each run of equal codes in a sorted array."""
    new_user = np.empty(len(codes), dtype=bool)
    new_user[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=new_user[1:])
    starts = np.flatnonzero(new_user)
    ends = np.append(starts[1:], len(codes))
    return codes[starts], starts, ends


def locate(assignments: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Each assignment's slices of the sorted outcome rows.

    Adds ``seg_lo``/``seg_hi`` (all the user's rows), ``pre_lo`` (from the CUPED
    pre-period's start), ``lo`` (from the first exposure) and ``hi`` (to the end
    of the analysis window): [seg_lo, lo) is before the first exposure, [pre_lo, lo)
    the pre-period, [lo, hi) the rows that count. The user's run is looked up among
    the distinct codes; each time is then a binary search within the narrowest
    slice known to hold it.
    """
    run_code, run_start, run_end = user_runs(outcomes[USER_CODE].to_numpy())
    codes = assignments[USER_CODE].to_numpy()
    run = np.searchsorted(run_code, codes)
    inside = run < len(run_code)
    found = np.zeros(len(codes), dtype=bool)
    found[inside] = run_code[run[inside]] == codes[inside]
    # A user without outcome rows gets the empty slice at their sort position.
    seg_lo = np.append(run_start, outcomes.height)[run]
    seg_hi = np.where(found, np.append(run_end, outcomes.height)[run], seg_lo)
    matched = outcomes[USER_CHECK].gather(seg_lo[found])
    if (matched != assignments[USER_CHECK].filter(pl.Series(found))).any():
        raise UserCodeCollisionError
    times = outcomes["timestamp"].to_physical().to_numpy()

    def instants(expr: pl.Expr) -> np.ndarray:
        us = assignments.select(expr.dt.cast_time_unit("us").to_physical())
        return us.to_series().to_numpy()

    first = pl.col("first_exposure")
    lo = first_at_or_after(times, seg_lo, seg_hi, instants(first))
    pre_start = first - pl.duration(days=pl.col("cuped_days"))
    return assignments.with_columns(
        pl.Series("seg_lo", seg_lo),
        pl.Series("seg_hi", seg_hi),
        pl.Series("pre_lo", first_at_or_after(times, seg_lo, lo, instants(pre_start))),
        pl.Series("lo", lo),
        pl.Series(
            "hi", first_at_or_after(times, lo, seg_hi, instants(pl.col("window_end")))
        ),
    )


def rows_between(located: pl.DataFrame, start: str, end: str) -> pl.DataFrame:
    """(uk, pos): every outcome row position in [start, end) of each assignment.

    Rows come out ordered by assignment, then by time (the sorted outcome order).
    """
    return located.select(
        "uk", pl.int_ranges(start, end, dtype=pl.Int64).alias("pos")
    ).explode("pos")
