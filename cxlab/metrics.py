"""One home per metric type: what each type reads from the log and hands to stats.

Each metric type of the catalog (CONTRACT §2) is one entry of :data:`TYPES`. An
entry declares

* its config keys (beyond the ones every metric has), which the loader allows;
* its components: the per-user aggregates of events its values are made of;
* a user's contribution to each column of the summary tables, from those
  components, and which population ``n`` counts (exposed users or responders);
* how one arm's sufficient statistics (:mod:`cxlab.stats.aggregates`) are built from a
  summary row, and, where CUPED applies, the arm's covariate statistics;
* how its deltas read: in points (NPS) or as a relative change;
* for the types whose results need more than per-user sums (one result per
  category, a time to an event), the per-row columns its detail table is built
  from (:mod:`cxlab.summaries.voice`).

The reduction engine (:mod:`cxlab.summaries`) and the analysis ask the entry
instead of branching on ``metric.type``; a new type is one new entry.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import polars as pl

from cxlab.stats.aggregates import (
    NPS_SCALE,
    ArmStats,
    CovariateStats,
    NpsStats,
    ProportionStats,
    RatioCovariateStats,
    RatioStats,
    SampleStats,
)

if TYPE_CHECKING:
    from cxlab.config import EventSpec, Filter, MetricDef

Row = Mapping[str, float]
Population = Literal["exposed", "responders"]
Detail = Literal["categories", "survival"]
NO_CATEGORY = "(none)"  # the category of an event whose category column is null
RESPONDERS = "d_pop"  # the summary column counting a responders population
NPS_PROMOTER_MIN = 9  # scores 9-10
NPS_PASSIVE_MIN = 7  # scores 7-8; 0-6 are detractors


# --- components: per-user aggregates of events ----------------------------------


def _filter_expr(conditions: Filter) -> pl.Expr:
    expr = pl.lit(True)
    for column, value in conditions:
        if isinstance(value, bool):
            expr &= (
                pl.col(column).cast(pl.String).str.to_lowercase() == str(value).lower()
            )
        elif isinstance(value, int | float):
            expr &= pl.col(column).cast(pl.Float64, strict=False) == float(value)
        else:
            expr &= pl.col(column).cast(pl.String) == value
    return expr


@dataclass(frozen=True, slots=True)
class Component:
    """One per-user aggregate of events: (event, filter, window, aggregate)."""

    event: str
    filter: Filter
    window_days: int | None
    aggregate: str  # count | sum | max | last

    @property
    def name(self) -> str:
        """A column name unique to this aggregate."""
        return "c_" + hashlib.sha1(repr(self).encode()).hexdigest()[:12]

    def condition(self) -> pl.Expr:
        """Whether an event row counts toward this aggregate."""
        cond = (pl.col("event") == self.event) & _filter_expr(self.filter)
        if self.aggregate != "count":
            cond &= pl.col("value").is_not_null()
        if self.window_days is not None:
            limit = pl.col("first_exposure") + pl.duration(days=self.window_days)
            cond &= pl.col("timestamp") < limit
        return cond

    def row_value(self) -> pl.Expr:
        """Per event row: its contribution (1 or the value), or null."""
        contribution = pl.lit(1.0) if self.aggregate == "count" else pl.col("value")
        return pl.when(self.condition()).then(contribution).alias(self.name)

    def group_agg(self) -> pl.Expr:
        """Aggregate the row values of a group (rows sorted by time for ``last``)."""
        col = pl.col(self.name)
        expr = {
            "count": col.sum(),
            "sum": col.sum(),
            "max": col.max(),
            "last": col.drop_nulls().last(),
        }[self.aggregate]
        return expr.alias(self.name)

    def cumulative(self) -> pl.Expr:
        """The user's value as of each row (rows sorted by user key ``uk``, time).

        Counts are a running total less the total before the user's first row
        (exact: whole numbers in float64); ``last`` carries the position of the
        user's latest non-null row forward. Sums and maxima run per user.
        """
        col = pl.col(self.name)
        starts = (pl.col("uk") != pl.col("uk").shift(1)).fill_null(True)
        user = pl.col("uk").rle_id()  # dense ids of the sorted runs: faster windows
        if self.aggregate == "count":
            total = col.fill_null(0).cum_sum()
            before = pl.when(starts).then(total - col.fill_null(0)).forward_fill()
            return (total - before).alias(self.name)
        if self.aggregate == "sum":
            return col.fill_null(0).cum_sum().over(user)
        if self.aggregate == "max":
            return col.cum_max().forward_fill().over(user)
        position = pl.int_range(pl.len(), dtype=pl.Int64)
        user_start = pl.when(starts).then(position).forward_fill()
        latest = pl.when(col.is_not_null()).then(position).forward_fill()
        value = col.gather(latest.fill_null(0))
        return pl.when(latest >= user_start).then(value).alias(self.name)

    def cumulative_since(
        self, unit: pl.Expr, running: pl.Expr, raw: pl.Expr
    ) -> pl.Expr:
        """The value over a unit's rows so far: a run of one user's rows.

        Rows are sorted by (``uk``, time) and each unit (e.g. the user's rows of
        one exposure-age bucket) is a consecutive run of its user's. ``running``
        is the user's value as of each row (:meth:`cumulative`), ``raw`` the
        row's own value (:meth:`row_value`). Counts and sums are the user's
        running total less the total before the unit's first row (a difference
        of the user's own partial sums, so no error grows with the log); ``last``
        carries the position of the latest non-null row of the unit; maxima run
        per unit.
        """
        starts = (unit != unit.shift(1)).fill_null(True)
        if self.aggregate in ("count", "sum"):
            before = pl.when(starts).then(running - raw.fill_null(0)).forward_fill()
            return running - before
        if self.aggregate == "max":
            return raw.cum_max().forward_fill().over(unit.rle_id())
        position = pl.int_range(pl.len(), dtype=pl.Int64)
        unit_start = pl.when(starts).then(position).forward_fill()
        latest = pl.when(raw.is_not_null()).then(position).forward_fill()
        value = raw.gather(latest.fill_null(0))
        return pl.when(latest >= unit_start).then(value)


def _component(
    metric: MetricDef, spec: EventSpec | None = None, aggregate: str | None = None
) -> Component:
    """The metric's events (or one side's), its filter and window, one aggregate."""
    event = spec.event if spec else metric.event
    assert event is not None
    conditions = tuple(sorted({*metric.filter, *(spec.filter if spec else ())}))
    agg = aggregate or (spec.aggregate if spec else metric.aggregate)
    return Component(event, conditions, metric.window_days, agg)


# --- the types --------------------------------------------------------------------


def cuped_covariates(row: Row) -> CovariateStats:
    """One arm's outcome (Σx, Σx²) and pre-period value (Σx₀, Σx₀², Σx·x₀).

    What every type that allows CUPED reads, whatever the metric.
    """
    return CovariateStats(
        int(row["n"]),
        row["sum_x"],
        row["sum_xx"],
        row["pre_x"],
        row["pre_xx"],
        row["pre_xy"],
    )


class MetricKind(ABC):
    """One metric type: its components, summary columns and arm statistics.

    Attributes:
        name: the ``type`` of the catalog.
        config_keys: keys a metric of this type may have beyond the common ones.
        columns: the summary columns it fills (the others stay zero).
        population: who ``n`` counts: every exposed user, or only responders
            (their contribution is in the :data:`RESPONDERS` column).
        cuped: whether CUPED applies. Its covariates are the type's per-user
            values over the pre-exposure period (:meth:`pre_values`); their sums
            fixed when a user enters (:meth:`entry_sums`) and those that change
            with the user's values (:meth:`cuped_sums`) fill the ``pre_*``
            summary columns.
        delta_in_points: deltas read as points on the metric's own scale, never
            as a relative change.
        natural_format: how its values show when the catalog names no ``format``.
        survey: its population answers a survey, so a treatment that changes who
            answers makes the comparison suspect (the response check).
    """

    name: ClassVar[str]
    config_keys: ClassVar[frozenset[str]]
    columns: ClassVar[tuple[str, ...]]
    population: ClassVar[Population] = "exposed"
    cuped: ClassVar[bool] = False
    delta_in_points: ClassVar[bool] = False
    natural_format: ClassVar[str] = "number"
    detail: ClassVar[Detail | None] = None
    survey: ClassVar[bool] = False

    def components(self, metric: MetricDef) -> tuple[Component, ...]:
        """The per-user aggregates the metric needs (one by default)."""
        return (_component(metric),)

    @abstractmethod
    def user_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """A user's contribution to each summary column.

        Args:
            values: the user's component values, in :meth:`components` order;
                null where the user has no such event.

        Returns:
            Summary column → expression, for each of :attr:`columns` (and
            :data:`RESPONDERS` for a responders population).
        """

    @abstractmethod
    def arm_stats(self, row: Row) -> ArmStats:
        """One arm's sufficient statistics from its summary row."""

    def covariate_stats(self, row: Row) -> CovariateStats | RatioCovariateStats:
        """One arm's outcome and pre-period covariate, for CUPED."""
        if not self.cuped:
            raise ValueError(f"CUPED does not apply to {self.name} metrics")
        return cuped_covariates(row)

    def pre_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """A user's covariates from their components over the pre-period.

        The metric's own per-user value x₀ (0 without events), as in Deng, Xu,
        Kohavi & Walker (2013), CUPED (WSDM 2013, DOI:10.1145/2433396.2433413).
        """
        return {"x0": self.user_values(values)["sum_x"]}

    def entry_sums(self, pre: Mapping[str, pl.Expr]) -> dict[str, pl.Expr]:
        """The covariate sums a user adds when they enter the population."""
        x0 = pre["x0"]
        return {"pre_x": x0, "pre_xx": x0 * x0}

    def cuped_sums(
        self, values: Sequence[pl.Expr], pre: Mapping[str, pl.Expr]
    ) -> dict[str, pl.Expr]:
        """The covariate sums that change with the user's values: x·x₀."""
        return {"pre_xy": self.user_values(values)["sum_x"] * pre["x0"]}

    def log_columns(self, metric: MetricDef) -> tuple[str, ...]:
        """Columns of the log its rows need beyond the components' (none)."""
        return ()

    def log_events(self, metric: MetricDef) -> tuple[str, ...]:
        """Events its rows need beyond the components' (none)."""
        return ()

    def row_columns(self, metric: MetricDef) -> dict[str, pl.Expr]:
        """Per counted row, the values its detail table is built from (none)."""
        return {}


class Proportion(MetricKind):
    """Share of exposed users with at least one event (Bernoulli per user)."""

    name = "proportion"
    config_keys = frozenset({"event"})
    columns = ("sum_x", "sum_xx")
    cuped = True
    natural_format = "percent"

    def components(self, metric: MetricDef) -> tuple[Component, ...]:
        """The user's count of the metric's events."""
        return (_component(metric, aggregate="count"),)

    def user_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """The user's x: 1 if they had the event, else 0."""
        x = (values[0].fill_null(0) > 0).cast(pl.Float64)
        return {"sum_x": x, "sum_xx": x * x}

    def arm_stats(self, row: Row) -> ArmStats:
        """Successes Σx out of n."""
        return ProportionStats(int(row["n"]), row["sum_x"])


class Mean(MetricKind):
    """Mean per exposed user of an aggregate of events (0 without events).

    With ``cap: {percentile: p}`` each user's value is capped before any test
    at the p-th percentile (linear interpolation) of the values of all the
    experiment's analysed users, arms pooled, at the end of the analysed day:
    winsorization, as in Kohavi, Tang & Xu (2020), Trustworthy Online Controlled
    Experiments, ch. 22. The cap is each day's own, so every ``--history`` day
    and every earlier as-of day (:func:`cxlab.summaries.at_day`) uses the cap of
    that day; the reduction finds it from the users' values by day
    (:mod:`cxlab.summaries.cap`), without a rescan.
    """

    name = "mean"
    config_keys = frozenset({"event", "aggregate", "cap"})
    columns = ("sum_x", "sum_xx")
    cuped = True

    def user_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """The user's x: their aggregate, 0 without events."""
        x = values[0].fill_null(0.0)
        return {"sum_x": x, "sum_xx": x * x}

    def arm_stats(self, row: Row) -> ArmStats:
        """n, Σx, Σx²."""
        return SampleStats(int(row["n"]), row["sum_x"], row["sum_xx"])


class Ratio(MetricKind):
    """Ratio of sums over exposed users, Σx / Σy (delta method)."""

    name = "ratio"
    config_keys = frozenset({"numerator", "denominator"})
    columns = ("sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy")
    cuped = True

    def components(self, metric: MetricDef) -> tuple[Component, ...]:
        """The numerator's and the denominator's per-user aggregates."""
        return (
            _component(metric, metric.numerator),
            _component(metric, metric.denominator),
        )

    def user_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """The user's x and y: numerator and denominator, 0 without events."""
        x, y = values[0].fill_null(0.0), values[1].fill_null(0.0)
        return {
            "sum_x": x,
            "sum_xx": x * x,
            "sum_y": y,
            "sum_yy": y * y,
            "sum_xy": x * y,
        }

    def arm_stats(self, row: Row) -> ArmStats:
        """n, Σx, Σy, Σx², Σy², Σxy."""
        return RatioStats(
            int(row["n"]),
            row["sum_x"],
            row["sum_y"],
            row["sum_xx"],
            row["sum_yy"],
            row["sum_xy"],
        )

    def covariate_stats(self, row: Row) -> RatioCovariateStats:
        """The ratio's sums, the pre-period ratio's and their cross-products."""
        return RatioCovariateStats(
            int(row["n"]),
            *(row[c] for c in ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")),
            *(row[c] for c in ("pre_x", "pre_y", "pre_xx", "pre_yy", "pre_x0y0")),
            *(row[c] for c in ("pre_xy", "pre_xy0", "pre_yx0", "pre_yy0")),
        )

    def pre_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """The user's pre-period numerator x₀ and denominator y₀ (0 without)."""
        parts = self.user_values(values)
        return {"x0": parts["sum_x"], "y0": parts["sum_y"]}

    def entry_sums(self, pre: Mapping[str, pl.Expr]) -> dict[str, pl.Expr]:
        """Σx₀, Σy₀, their squares and Σx₀y₀."""
        x0, y0 = pre["x0"], pre["y0"]
        return {
            "pre_x": x0,
            "pre_xx": x0 * x0,
            "pre_y": y0,
            "pre_yy": y0 * y0,
            "pre_x0y0": x0 * y0,
        }

    def cuped_sums(
        self, values: Sequence[pl.Expr], pre: Mapping[str, pl.Expr]
    ) -> dict[str, pl.Expr]:
        """The cross-products of (x, y) with (x₀, y₀), for the ratios' covariance."""
        parts = self.user_values(values)
        x, y, x0, y0 = parts["sum_x"], parts["sum_y"], pre["x0"], pre["y0"]
        return {
            "pre_xy": x * x0,
            "pre_xy0": x * y0,
            "pre_yx0": y * x0,
            "pre_yy0": y * y0,
        }


def _nps_score(score: pl.Expr) -> pl.Expr:
    """An answer 0-10 as +100 (promoter), 0 (passive) or −100 (detractor); 0 if none."""
    promoter = (score >= NPS_PROMOTER_MIN).fill_null(False).cast(pl.Float64)
    detractor = (score < NPS_PASSIVE_MIN).fill_null(False).cast(pl.Float64)
    return NPS_SCALE * (promoter - detractor)


class Nps(MetricKind):
    """Net Promoter Score of the users who answered; their last answer counts.

    The summary carries the counts themselves: ``sum_x`` promoters (9-10),
    ``sum_y`` detractors (0-6), ``n`` responders; passives are the rest.

    CUPED: a responder's score s (±100 or 0) is adjusted by their own last
    answer before exposure, scored the same way, x₀ = 0 for a responder who
    never answered before (a passive's score: no information either way). The
    covariate sums run over responders only, as ``n`` does: they enter with the
    user's first answer in the period (Σx₀, Σx₀², Σs·x₀).
    """

    name = "nps"
    config_keys = frozenset({"event"})
    columns = ("sum_x", "sum_y")
    population = "responders"
    cuped = True
    delta_in_points = True
    survey = True

    def components(self, metric: MetricDef) -> tuple[Component, ...]:
        """The user's last answer."""
        return (_component(metric, aggregate="last"),)

    def user_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """1 for a responder, and 1 for a promoter or for a detractor."""
        score = values[0]
        return {
            RESPONDERS: score.is_not_null().cast(pl.Float64),
            "sum_x": (score >= NPS_PROMOTER_MIN).fill_null(False).cast(pl.Float64),
            "sum_y": (score < NPS_PASSIVE_MIN).fill_null(False).cast(pl.Float64),
        }

    def arm_stats(self, row: Row) -> ArmStats:
        """Promoters, passives and detractors, counted exactly."""
        promoters, detractors = int(row["sum_x"]), int(row["sum_y"])
        return NpsStats(promoters, int(row["n"]) - promoters - detractors, detractors)

    def covariate_stats(self, row: Row) -> CovariateStats:
        """Responders' scores Σs = 100 (P − D), Σs² = 100² (P + D), and Σx₀ …."""
        promoters, detractors = row["sum_x"], row["sum_y"]
        return CovariateStats(
            int(row["n"]),
            NPS_SCALE * (promoters - detractors),
            NPS_SCALE**2 * (promoters + detractors),
            row["pre_x"],
            row["pre_xx"],
            row["pre_xy"],
        )

    def pre_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """The user's last pre-period answer, scored ±100/0 (0 without one)."""
        return {"x0": _nps_score(values[0])}

    def entry_sums(self, pre: Mapping[str, pl.Expr]) -> dict[str, pl.Expr]:
        """None: the covariate sums enter with the answer (responders only)."""
        return {}

    def cuped_sums(
        self, values: Sequence[pl.Expr], pre: Mapping[str, pl.Expr]
    ) -> dict[str, pl.Expr]:
        """Per responder x₀, x₀² and s·x₀."""
        responder = values[0].is_not_null().cast(pl.Float64)
        x0 = pre["x0"]
        return {
            "pre_x": responder * x0,
            "pre_xx": responder * x0 * x0,
            "pre_xy": _nps_score(values[0]) * x0,
        }


class Categorical(Mean):
    """Events per exposed user of each category (reason) found in the data.

    Each category is a mean of per-user counts: the user's events of that
    category (0 without), so the categories' rates add up to the metric's events
    per user and a user who contacts twice for one reason counts twice. An event
    whose category column is null is in the category :data:`NO_CATEGORY`. The
    summary row of the metric itself carries the count of all its events; the
    per-category sums and each user's first category are kept by
    :mod:`cxlab.summaries.voice`.
    """

    name = "categorical"
    config_keys = frozenset({"event", "category"})
    cuped = False
    detail = "categories"

    def components(self, metric: MetricDef) -> tuple[Component, ...]:
        """The user's count of the metric's events."""
        return (_component(metric, aggregate="count"),)

    def log_columns(self, metric: MetricDef) -> tuple[str, ...]:
        """The category column."""
        assert metric.category is not None
        return (metric.category,)

    def row_columns(self, metric: MetricDef) -> dict[str, pl.Expr]:
        """The category of each of the metric's events (null on other rows)."""
        assert metric.category is not None
        category = pl.col(metric.category).cast(pl.String).fill_null(NO_CATEGORY)
        condition = _component(metric, aggregate="count").condition()
        return {category_column(metric): pl.when(condition).then(category)}


class TimeToEvent(MetricKind):
    """Time from a user's first start event to the next end event (Kaplan–Meier).

    ``n`` counts the users with a start event (the summary's responders); the
    times themselves, censored at the as-of moment while still open, are kept
    by :mod:`cxlab.summaries.voice`.
    """

    name = "time_to_event"
    config_keys = frozenset({"start_event", "end_event", "horizon_hours"})
    columns = ()
    population = "responders"
    detail = "survival"

    def components(self, metric: MetricDef) -> tuple[Component, ...]:
        """The user's count of start events."""
        assert metric.start_event is not None
        return (
            Component(metric.start_event, metric.filter, metric.window_days, "count"),
        )

    def log_events(self, metric: MetricDef) -> tuple[str, ...]:
        """The end event."""
        assert metric.end_event is not None
        return (metric.end_event,)

    def user_values(self, values: Sequence[pl.Expr]) -> dict[str, pl.Expr]:
        """1 for a user with a start event."""
        return {RESPONDERS: (values[0].fill_null(0) > 0).cast(pl.Float64)}

    def arm_stats(self, row: Row) -> ArmStats:
        """Not from a summary row: see :func:`cxlab.stats.survival.survival_stats`."""
        raise ValueError("time_to_event arms come from the survival summaries")

    def row_columns(self, metric: MetricDef) -> dict[str, pl.Expr]:
        """The moment of each start event and of each end event."""
        (start,) = self.components(metric)
        assert metric.end_event is not None
        end = Component(metric.end_event, (), None, "count")
        moment = pl.col("timestamp")
        return {
            START_PREFIX + metric.id: pl.when(start.condition()).then(moment),
            END_PREFIX + metric.id: pl.when(end.condition()).then(moment),
        }


START_PREFIX = "start:"
END_PREFIX = "end:"


def category_column(metric: MetricDef) -> str:
    """The per-row column holding a categorical metric's category."""
    return "category:" + metric.id


TYPES: dict[str, MetricKind] = {
    kind.name: kind
    for kind in (Proportion(), Mean(), Ratio(), Nps(), Categorical(), TimeToEvent())
}


def metric_type(metric: MetricDef) -> MetricKind:
    """The registry entry of a metric's type."""
    return TYPES[metric.type]


def arm_stats(metric: MetricDef, row: Row) -> ArmStats:
    """One arm's sufficient statistics from its summary row."""
    return metric_type(metric).arm_stats(row)


def covariate_stats(
    metric: MetricDef, row: Row
) -> CovariateStats | RatioCovariateStats:
    """One arm's outcome and pre-period covariate, for CUPED.

    Raises:
        ValueError: CUPED does not apply to the metric's type.
    """
    return metric_type(metric).covariate_stats(row)
