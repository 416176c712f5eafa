"""Stage 2, the reduction: from rows to summed changes per variant and day.

Attribution (:mod:`cxlab.attribution`) makes one row per (experiment, user);
:mod:`.users` gives each user's metric components at the end of each of their
days. Per metric, each user's contribution to the sums (the registry's
:meth:`~cxlab.metrics.MetricKind.user_values`: x, x², …, and x·x₀ for CUPED) is
taken less the same on their previous day, and the changes are summed per
(variant, day) and per (variant, segment, day) in one streaming collect. A user
who meets a second variant retires on that day: their contribution is taken
back. The users entering and leaving each arm make the flow. A capped mean's
contribution moves with its day's cap too, so :mod:`.cap` gives its changes. The
novelty check's sums are the same changes with (user, exposure-age bucket) as the
unit, summed per (variant, bucket, day) (:mod:`.novelty`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from cxlab.attribution import attribute_exposures
from cxlab.config import Catalog, Experiment
from cxlab.metrics import Component, metric_type
from cxlab.summaries.cap import CAP_SCHEMA, capped_changes
from cxlab.summaries.novelty import BUCKET, bucket_flow, novelty_table, splits
from cxlab.summaries.scan import Scan, named_by_id
from cxlab.summaries.set_aside import BeforeExposure, Fates, exposure_fates
from cxlab.summaries.tables import DELTA_COLUMNS, SEGMENT_PREFIX
from cxlab.summaries.users import user_days
from cxlab.summaries.voice import category_changes, comment_tables, survival_changes

PREVIOUS = "previous:"


@dataclass(frozen=True)
class Reduced:
    """The reduction's tables: small, per variant (and segment) and day."""

    assignments: pl.DataFrame  # one row per analysed (experiment, user)
    users_by_day: pl.DataFrame  # experiment, variant, day: users first seen
    deltas: pl.DataFrame  # per (experiment, metric, variant, day): summed changes
    flow: pl.DataFrame  # per (experiment, variant, day): users in/out, pre sums
    dimensions: list[tuple[str, pl.DataFrame, pl.DataFrame]]  # sums, user counts
    before: BeforeExposure  # rows before a first exposure; users in by day
    exposure_fates: Fates | None  # the ledger's exposure rows (when asked)
    outcome_fates: Fates | None  # the ledger's outcome rows (when asked)
    categories: pl.DataFrame  # per category and day: Σx, Σx², first (.voice)
    survival: pl.DataFrame  # per day, minutes and kind: users in less out (.voice)
    comments: pl.DataFrame  # sampled NPS comments, by band and day (.voice)
    words: pl.DataFrame  # detractors' word counts: daily changes (.voice)
    caps: pl.DataFrame  # capped means: the cap per experiment, metric, day (.cap)
    by_age: pl.DataFrame  # per exposure-age bucket: daily changes (.novelty)


def reduce_log(
    scan: Scan, experiments: Sequence[Experiment], catalog: Catalog
) -> Reduced:
    """Attribute the exposures, then sum the users' daily changes per arm.

    Raises:
        UserCodeCollisionError: two user ids share a hash code (the caller
            scans again with exact codes).
    """
    assignments, users_by_day, fates = _attribute(scan)
    arms = _arms(experiments)
    dims = scan.dims
    split = {m: e for m, e in scan.metric_users.items() if splits(catalog[m])}
    users, days, ages = user_days(
        assignments,
        scan.outcomes,
        arms,
        experiments,
        catalog,
        scan.metric_users,
        scan.components,
        dims,
        by_age=_by_age_components(split, catalog),
        ledger=scan.ledger,
    )
    categories = category_changes(
        users.detail_rows, users.table, catalog, scan.metric_users
    )
    survival = survival_changes(
        users.detail_rows,
        users.table,
        catalog,
        scan.metric_users,
        scan.log_row["last_event"],
    )
    comments, words = comment_tables(
        scan.comments, assignments, catalog, scan.metric_users
    )
    parts = _Parts(scan.metric_users, catalog, users.pre_columns)
    capped, caps = _capped(days, users.table, parts, arms, dims)
    daily_sums, dim_sums = _summed_changes(
        days, parts, scan.components, arms, experiments, dims, capped
    )
    del days  # the biggest frame: free it now
    by_age = _by_age(ages, users.table, split, catalog, arms)
    del ages
    dimensions = _dimensions(
        users.table, arms, experiments, scan.metric_users, dims, dim_sums
    )
    return Reduced(
        assignments=assignments,
        users_by_day=users_by_day,
        deltas=_to_long(
            _named_arms(daily_sums, arms),
            ["experiment_id", "variant", "day"],
            scan.metric_users,
        ),
        flow=_flow(users.table, users.pre_columns, arms, catalog),
        dimensions=dimensions,
        before=users.before,
        exposure_fates=fates,
        outcome_fates=users.fates,
        categories=categories,
        survival=survival,
        comments=comments,
        words=words,
        caps=caps,
        by_age=by_age,
    )


def _attribute(scan: Scan) -> tuple[pl.DataFrame, pl.DataFrame, Fates | None]:
    """One row per (experiment, user) (``uk`` its index); new users by day.

    With ``scan.ledger``, also the fate of every exposure row.
    """
    coded = scan.exposures.take().with_columns(scan.codes)
    fates = exposure_fates(coded) if scan.ledger else None
    attribution = attribute_exposures(coded, scan.dims)
    assignments = attribution.assignments.with_row_index("uk")
    users_by_day = named_by_id(attribution.first_seen.lazy(), scan.windows)
    return assignments, users_by_day, fates


def _arms(experiments: Sequence[Experiment]) -> pl.DataFrame:
    """An integer ``arm`` per (experiment, variant): the group-bys' key."""
    return pl.DataFrame(
        [(e.id, v) for e in experiments for v in e.variant_ids],
        schema={"experiment_id": pl.String, "variant": pl.String},
        orient="row",
    ).with_row_index("arm")


@dataclass(frozen=True)
class _Parts:
    """Each metric's per-user contributions as wide columns "<metric>|<sum>"."""

    metric_users: Mapping[str, Sequence[str]]
    catalog: Catalog
    pre_columns: Mapping[str, Mapping[str, str]]

    def of(self, prefix: str = "") -> dict[str, pl.Expr]:
        """The contributions of the metrics without a cap (:mod:`.cap` has those)."""
        parts = {}
        for metric_id in self.metric_users:
            if self.catalog[metric_id].cap is None:
                parts |= self.metric(metric_id, prefix)
        return parts

    def metric(self, metric_id: str, prefix: str = "") -> dict[str, pl.Expr]:
        """A metric's contributions from the component columns ``prefix + name``.

        Only the sums its type fills (the others are zero); where CUPED
        applies, the covariate sums that change with the user's values.
        """
        metric = self.catalog[metric_id]
        kind = metric_type(metric)
        values = [pl.col(prefix + c.name) for c in kind.components(metric)]
        metric_parts = kind.user_values(values)
        if metric_id in self.pre_columns:
            pre = _covariates(self.pre_columns[metric_id])
            metric_parts |= kind.cuped_sums(values, pre)
        return {f"{metric_id}|{k}": e for k, e in metric_parts.items()}


def _capped(
    days: pl.DataFrame,
    users: pl.DataFrame,
    parts: _Parts,
    arms: pl.DataFrame,
    dims: Sequence[str],
) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """The capped means' changes per user and day, and their caps (:mod:`.cap`)."""
    changes, caps = [], [pl.DataFrame(schema=CAP_SCHEMA)]
    for metric_id, exp_ids in parts.metric_users.items():
        metric = parts.catalog[metric_id]
        if metric.cap is None:
            continue
        of_exps = pl.col("arm").is_in(_arms_of(arms, exp_ids).implode())
        (component,) = metric_type(metric).components(metric)
        metric_changes, metric_caps = capped_changes(
            metric,
            component.name,
            parts.metric(metric_id),
            days.filter(of_exps),
            users.filter(of_exps),
            [SEGMENT_PREFIX + d for d in dims],
        )
        changes.append(metric_changes)
        caps.append(metric_caps)
    return changes, pl.concat(caps)


def _summed_changes(
    days: pl.DataFrame,
    parts: _Parts,
    components: Sequence[Component],
    arms: pl.DataFrame,
    experiments: Sequence[Experiment],
    dims: Sequence[str],
    capped: Sequence[pl.DataFrame],
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The changes summed per (arm, day), and per (arm, segment, day) by dimension.

    Each user's contribution on each of their days less the same on their
    previous day; a user who meets a second variant retires on that day. The
    capped means' changes (``capped``, from :mod:`.cap`) join them.
    """
    seg_cols = [SEGMENT_PREFIX + d for d in dims]
    changes = pl.concat(
        [*_changes(days, parts, components, seg_cols), *[f.lazy() for f in capped]],
        how="diagonal_relaxed",
    )
    wide_sums = pl.selectors.contains("|").sum()
    covered = [[e.id for e in experiments if d in e.dimensions] for d in dims]
    plans = [
        changes.filter(pl.col("arm").is_in(_arms_of(arms, exp_ids).implode()))
        .group_by("arm", pl.col(SEGMENT_PREFIX + d), "day")
        .agg(wide_sums)
        for d, exp_ids in zip(dims, covered, strict=True)
    ]
    # Every user is in one segment of a dimension (missing values too), so the
    # segments' sums of the dimension in most experiments add up to their arms';
    # only the other experiments' changes are summed per arm directly.
    widest = max(range(len(dims)), key=lambda i: len(covered[i]), default=None)
    spanned = covered[widest] if widest is not None else []
    rest = [e.id for e in experiments if e.id not in spanned]
    plans.append(
        changes.filter(pl.col("arm").is_in(_arms_of(arms, rest).implode()))
        .group_by("arm", "day")
        .agg(wide_sums)
    )
    *dim_sums, rest_sums = pl.collect_all(plans, engine="streaming")
    if widest is None:
        return rest_sums, dim_sums
    from_segments = dim_sums[widest].group_by("arm", "day").agg(wide_sums)
    return pl.concat([from_segments, rest_sums]), dim_sums


def _changes(
    days: pl.DataFrame,
    parts: _Parts,
    components: Sequence[Component],
    keys: Sequence[str],
) -> list[pl.LazyFrame]:
    """Each unit's (``uk``) contribution on each of its days less its previous day's.

    A unit whose user meets a second variant retires on that day: its last
    contribution is taken back. Rows keep ``arm``, ``day`` and ``keys``.
    """
    conflict = pl.col("conflict_day")
    same_unit = pl.col("uk") == pl.col("uk").shift(1)
    active = days.filter(conflict.is_null() | (pl.col("day") < conflict)).with_columns(
        pl.when(same_unit).then(pl.col(c.name).shift(1)).alias(PREVIOUS + c.name)
        for c in components
    )
    now, before = parts.of(), parts.of(PREVIOUS)
    retiring = active.filter(conflict.is_not_null() & pl.col("uk").is_last_distinct())
    return [
        active.lazy().select(
            "arm", "day", *keys, *[(e - before[k]).alias(k) for k, e in now.items()]
        ),
        retiring.lazy().select(
            "arm",
            conflict.alias("day"),
            *keys,
            *[(-e).alias(k) for k, e in now.items()],
        ),
    ]


def _by_age(
    ages: pl.DataFrame | None,
    users: pl.DataFrame,
    metric_users: Mapping[str, Sequence[str]],
    catalog: Catalog,
    arms: pl.DataFrame,
) -> pl.DataFrame:
    """The novelty check's daily changes per exposure-age bucket (:mod:`.novelty`).

    The units are (user, bucket) pairs (``ages``); no CUPED, no cap.
    """
    parts = _Parts(metric_users, catalog, {})
    components = _by_age_components(metric_users, catalog)
    keys = ["arm", BUCKET, "day"]
    if ages is None:
        sums = pl.DataFrame(schema={"arm": pl.UInt32, BUCKET: pl.Int64, "day": pl.Date})
    else:
        sums = (
            pl.concat(_changes(ages, parts, components, [BUCKET]))
            .group_by(keys)
            .agg(pl.selectors.contains("|").sum())
            .collect()
        )
    return novelty_table(
        _named_arms(sums, arms),
        _named_arms(bucket_flow(users), arms),
        metric_users,
        catalog,
    )


def _by_age_components(
    metric_users: Mapping[str, Sequence[str]], catalog: Catalog
) -> list[Component]:
    """The components of the metrics split by exposure age."""
    metrics = [catalog[m] for m in metric_users]
    return list(dict.fromkeys(c for m in metrics for c in metric_type(m).components(m)))


def _covariates(columns: Mapping[str, str]) -> dict[str, pl.Expr]:
    """A metric's CUPED covariates from their columns, 0 without a pre-period."""
    return {name: pl.col(c).fill_null(0.0) for name, c in columns.items()}


def _flow(
    users: pl.DataFrame,
    pre_columns: Mapping[str, Mapping[str, str]],
    arms: pl.DataFrame,
    catalog: Catalog,
) -> pl.DataFrame:
    """Per (experiment, variant, day): users in and out, and their pre-period sums.

    A user enters on their exposure day (+1 and the type's entry sums, e.g. +x₀,
    +x₀²) and leaves when they meet a second variant (−1 and the same taken
    back; counted in ``d_conflicts``). The sums are columns "<metric>:<sum>".
    """
    conflict = pl.col("conflict_day")
    entry = {
        f"{m}:{name}": value
        for m, columns in pre_columns.items()
        for name, value in metric_type(catalog[m])
        .entry_sums(_covariates(columns))
        .items()
    }
    day = pl.col("exposure_day").alias("day")
    entering = users.select(
        "arm", day, pl.lit(1).alias("d_users"), pl.lit(0).alias("d_conflicts")
    )
    frames = [entering]
    # Only users of an experiment with CUPED have a pre-period (others add 0).
    if entry:
        with_pre = users.filter(pl.col("cuped_days") > 0)
        frames.append(
            with_pre.select("arm", day, *[v.alias(k) for k, v in entry.items()])
        )
    frames.append(
        users.filter(conflict.is_not_null()).select(
            "arm",
            conflict.alias("day"),
            pl.lit(-1).alias("d_users"),
            pl.lit(1).alias("d_conflicts"),
            *[(-v).alias(k) for k, v in entry.items()],
        )
    )
    return _named_arms(
        pl.concat(frames, how="diagonal_relaxed")
        .group_by("arm", "day")
        .agg(pl.exclude("arm", "day").sum()),
        arms,
    )


def _dimensions(
    users: pl.DataFrame,
    arms: pl.DataFrame,
    experiments: Sequence[Experiment],
    metric_users: Mapping[str, Sequence[str]],
    dims: Sequence[str],
    dim_sums: Sequence[pl.DataFrame],
) -> list[tuple[str, pl.DataFrame, pl.DataFrame]]:
    """Per dimension: its name, summed changes per segment, users in and out."""
    keys = ["experiment_id", "variant", "segment", "day"]
    out = []
    for d, sums in zip(dims, dim_sums, strict=True):
        exp_ids = [e.id for e in experiments if d in e.dimensions]
        metrics = {
            m: [e for e in users_of if e in exp_ids]
            for m, users_of in metric_users.items()
        }
        changes = _to_long(_named_arms(sums, arms), keys, metrics)
        out.append((d, changes, _segment_users(users, arms, d, exp_ids)))
    return out


def _segment_users(
    users: pl.DataFrame, arms: pl.DataFrame, dim: str, exp_ids: Sequence[str]
) -> pl.DataFrame:
    """Users in and out per (experiment, variant, segment, day) of a dimension.

    A user enters on their first day (+1) and leaves when they meet a second
    variant (−1).
    """
    conflict = pl.col("conflict_day")
    segment = pl.col(SEGMENT_PREFIX + dim)
    of_exps = users.select("arm", segment, "exposure_day", conflict).filter(
        pl.col("arm").is_in(_arms_of(arms, exp_ids).implode())
    )
    return _named_arms(
        pl.concat(
            [
                of_exps.select(
                    "arm",
                    segment,
                    pl.col("exposure_day").alias("day"),
                    pl.lit(1).alias("users"),
                ),
                of_exps.filter(conflict.is_not_null()).select(
                    "arm", segment, conflict.alias("day"), pl.lit(-1).alias("users")
                ),
            ],
            how="vertical_relaxed",
        )
        .group_by("arm", SEGMENT_PREFIX + dim, "day")
        .agg(pl.col("users").sum()),
        arms,
    )


def _to_long(
    wide: pl.DataFrame, keys: Sequence[str], metric_users: Mapping[str, Sequence[str]]
) -> pl.DataFrame:
    """Wide "<metric>|<sum>" columns to one row per metric (its experiments only)."""
    frames = [
        wide.filter(pl.col("experiment_id").is_in(exp_ids)).select(
            *keys,
            pl.lit(metric_id).alias("metric"),
            *[
                pl.col(f"{metric_id}|{c}").alias(c)
                if f"{metric_id}|{c}" in wide.columns
                else pl.lit(0.0).alias(c)
                for c in DELTA_COLUMNS
            ],
        )
        for metric_id, exp_ids in metric_users.items()
    ]
    if not frames:
        schema = {**{k: wide.schema[k] for k in keys}, "metric": pl.String}
        return pl.DataFrame(
            schema={**schema, **dict.fromkeys(DELTA_COLUMNS, pl.Float64)}
        )
    return pl.concat(frames, how="vertical_relaxed")


def _arms_of(arms: pl.DataFrame, exp_ids: Sequence[str]) -> pl.Series:
    """The arm numbers of these experiments: filters on them are integer compares."""
    return arms.filter(pl.col("experiment_id").is_in(exp_ids))["arm"]


def _named_arms(frame: pl.DataFrame, arms: pl.DataFrame) -> pl.DataFrame:
    """Arm numbers back to (experiment_id, variant); segments back to text."""
    named = frame.join(arms, on="arm", how="left").drop("arm")
    segments = [c for c in named.columns if c.startswith(SEGMENT_PREFIX)]
    return named.select(
        "experiment_id",
        "variant",
        *[pl.col(c).cast(pl.String).alias("segment") for c in segments],
        pl.exclude("experiment_id", "variant", *segments),
    )
