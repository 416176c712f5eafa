"""One home per metric type: what each type reads from the log and hands to stats.

Each metric type of the catalog (CONTRACT §2) is one entry of :data:`TYPES`. An
entry declares

* its config keys (beyond the ones every metric has), which the loader allows;
* its components: the per-user aggregates of events its values are made of;
* a user's contribution to each column of the summary tables, from those
  components, and which population ``n`` counts (exposed users or responders);
* how one arm's sufficient statistics (:mod:`stats.aggregates`) are built from a
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

from stats.aggregates import (
    ArmStats,
    CovariateStats,
    NpsStats,
    ProportionStats,
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
        cuped: whether CUPED applies; its covariate is the same per-user value
            ``sum_x`` over the pre-exposure period.
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

    def covariate_stats(self, row: Row) -> CovariateStats:
        """One arm's outcome and pre-period covariate, for CUPED."""
        if not self.cuped:
            raise ValueError(f"CUPED does not apply to {self.name} metrics")
        return cuped_covariates(row)

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
    """Mean per exposed user of an aggregate of events (0 without events)."""

    name = "mean"
    config_keys = frozenset({"event", "aggregate"})
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


class Nps(MetricKind):
    """Net Promoter Score of the users who answered; their last answer counts.

    The summary carries the counts themselves: ``sum_x`` promoters (9-10),
    ``sum_y`` detractors (0-6), ``n`` responders; passives are the rest.
    """

    name = "nps"
    config_keys = frozenset({"event"})
    columns = ("sum_x", "sum_y")
    population = "responders"
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
        """Not from a summary row: see :func:`stats.survival.survival_stats`."""
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


def covariate_stats(metric: MetricDef, row: Row) -> CovariateStats:
    """One arm's outcome and pre-period covariate, for CUPED.

    Raises:
        ValueError: CUPED does not apply to the metric's type.
    """
    return metric_type(metric).covariate_stats(row)
