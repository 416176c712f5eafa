"""The reduction as one SQL statement, built once as a SQLGlot tree from the configs.

:func:`build_reduction` follows the Polars engine's attribution rules (CONTRACT §1)
and the metric registry; :func:`render` prints the tree in a dialect. The stages
are common table expressions:

1. ``src``: the events table, columns mapped to the contract's names and typed;
   ``ev``: the same cut at the as-of day.
2. ``windows``: per experiment its analysis window; ``exposures``: the
   configured experiments' exposure rows, flagged ``in_window``.
3. ``ranked`` / ``firsts`` / ``people``: one row per (experiment, user) from the
   first in-window exposure (ties in log order), with the first exposure to
   another variant (``conflict_at``), the dimension values of the first row,
   the CUPED pre-period covariates and the rows before the first exposure.
4. ``joined`` / ``user_day``: the outcome rows of each user joined to their
   assignments, in phases (before, CUPED pre-period, counted); each component's
   aggregate per (assignment, phase, day).
5. ``running`` / ``valued`` / ``changes``: each component's value at the end of
   each day, the user's contribution to every metric's sums (zero from the day
   they meet a second variant) and its change since their previous day.
6. ``category_rows`` / ``category_kept`` / ``category_days``: the categorical
   metrics' events with their category, per (user, category, day);
   ``cap_*_<i>``: a capped mean's users by day, the day's pooled percentile and
   the capped contributions' changes; ``tte_*_<i>``: a time_to_event metric's
   times and each user's state by day.
7. The output: the changes summed per (experiment, variant, day) and per
   segment, per category and per survival state, the caps, the users entering
   and leaving, the exposure counts and the log's last day, all in one long
   table of daily changes
   (:data:`OUTPUT_COLUMNS`, documented in docs/summaries-format.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from cxlab.attribution import analysis_cutoff
from cxlab.config import Catalog, Experiment
from cxlab.events import EXPOSURE
from cxlab.metrics import NO_CATEGORY, RESPONDERS, Component, metric_type
from cxlab.sql.values import sql_cuped, sql_values
from cxlab.summaries.as_of import analysis_cutoff_of_day
from cxlab.summaries.tables import MISSING
from cxlab.summaries.voice import GONE, LATE, OPEN, RESOLVED

DIALECTS = ("duckdb", "spark", "bigquery", "snowflake", "postgres")
CONTRACT_COLUMNS = ("experiment_id", "variant", "value")
LOG_ORDER = "log_order"
SUMS = ("sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy")
# CUPED's further sums for ratio metrics (cxlab.summaries.tables.CUPED_COLUMNS).
RATIO_CUPED = ("pre_y", "pre_yy", "pre_x0y0", "pre_xy0", "pre_yx0", "pre_yy0")
# The output table: name → SQL type. Rows of one key add up (daily changes).
OUTPUT_COLUMNS: dict[str, str] = {
    "kind": "VARCHAR",
    "experiment_id": "VARCHAR",
    "variant": "VARCHAR",
    "metric": "VARCHAR",
    "dimension": "VARCHAR",
    "segment": "VARCHAR",
    "day": "DATE",
    "entered": "BIGINT",
    "conflicts": "BIGINT",
    "pre_exposure_events": "BIGINT",
    "exposure_rows": "BIGINT",
    "in_window_rows": "BIGINT",
    "first_seen": "BIGINT",
    "responders": "DOUBLE",
    **dict.fromkeys(SUMS, "DOUBLE"),
    "pre_x": "DOUBLE",
    "pre_xx": "DOUBLE",
    "pre_xy": "DOUBLE",
    "category": "VARCHAR",
    "first_category": "DOUBLE",
    **dict.fromkeys(RATIO_CUPED, "DOUBLE"),
    "cap": "DOUBLE",
    "minutes": "BIGINT",
    "state": "BIGINT",
    "state_users": "BIGINT",
}
# Columns added to the format after its first version: a table made by an
# earlier `cxlab sql` lacks them and reads as if they were NULL.
ADDED_COLUMNS = (
    "category",
    "first_category",
    *RATIO_CUPED,
    "cap",
    "minutes",
    "state",
    "state_users",
)
KINDS = (
    "log",
    "arm",
    "metric",
    "segment_arm",
    "segment_metric",
    "category",
    "cap",
    "survival",
)


# --- small builders ------------------------------------------------------------------


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference."""
    return exp.column(name, table=table, quoted=True)


def text(value: str) -> exp.Literal:
    """A text literal (quoted and escaped by the renderer)."""
    return exp.Literal.string(value)


def num(value: float | int) -> exp.Literal:
    """A number literal."""
    return exp.Literal.number(value)


def instant(moment: dt.datetime) -> exp.Expression:
    """A UTC timestamp literal."""
    stamp = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")
    return exp.cast(text(stamp), "TIMESTAMPTZ")


def days_after(moment: exp.Expression, days: int) -> exp.Expression:
    """``moment`` plus a whole number of days."""
    interval = exp.Interval(this=text(str(days)), unit=exp.Var(this="DAY"))
    return exp.Add(this=moment, expression=interval)


def days_before(moment: exp.Expression, days: int) -> exp.Expression:
    """``moment`` minus a whole number of days."""
    interval = exp.Interval(this=text(str(days)), unit=exp.Var(this="DAY"))
    return exp.Sub(this=moment, expression=interval)


def day_of(moment: exp.Expression) -> exp.Expression:
    """The UTC day of a timestamp (the session's time zone must be UTC)."""
    return exp.cast(moment, "DATE")


def is_in(expr: exp.Expression, values: Sequence[str]) -> exp.Expression:
    """``expr IN (...)`` over text values; FALSE for none."""
    if not values:
        return exp.false()
    return exp.In(this=expr, expressions=[text(v) for v in values])


def flag(condition: exp.Expression) -> exp.Expression:
    """1 where the condition holds, else 0."""
    return exp.case().when(condition, num(1)).else_(num(0))


def window(
    func: exp.Expression,
    partition: Sequence[exp.Expression],
    order: Sequence[exp.Ordered] = (),
    *,
    running: bool = False,
) -> exp.Window:
    """``func OVER (PARTITION BY … ORDER BY … [ROWS UNBOUNDED PRECEDING])``."""
    spec = None
    if running:
        spec = exp.WindowSpec(
            kind="ROWS",
            start="UNBOUNDED",
            start_side="PRECEDING",
            end="CURRENT ROW",
        )
    return exp.Window(
        this=func,
        partition_by=list(partition),
        order=exp.Order(expressions=list(order)) if order else None,
        spec=spec,
    )


def asc(expr: exp.Expression) -> exp.Ordered:
    """Ascending, NULLs first (as Polars sorts)."""
    return exp.Ordered(this=expr, desc=False, nulls_first=True)


def desc(expr: exp.Expression) -> exp.Ordered:
    """Descending, NULLs last."""
    return exp.Ordered(this=expr, desc=True, nulls_first=False)


def union_all(selects: Sequence[exp.Select]) -> exp.Query:
    """The selects, one after another."""
    query: exp.Query = selects[0]
    for select in selects[1:]:
        query = exp.union(query, select, distinct=False)
    return query


# --- what the configs ask for --------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The experiments' needs: metrics, components, dimensions, CUPED metrics."""

    experiments: tuple[Experiment, ...]
    catalog: Catalog
    metric_users: dict[str, list[str]]  # metric id → ids of its experiments
    components: tuple[Component, ...]
    dims: tuple[str, ...]
    cuped_metrics: tuple[str, ...]  # metrics with a pre-period covariate

    @classmethod
    def of(
        cls, experiments: Sequence[Experiment], catalog: Catalog, engine: str
    ) -> Plan:
        """What the SQL must compute for these experiments.

        Raises:
            UnsupportedMetricError: a metric type the SQL cannot express yet.
        """
        metric_users: dict[str, list[str]] = {}
        for e in experiments:
            for metric_id, _ in e.metric_roles:
                sql_values(catalog[metric_id].type, engine)
                metric_users.setdefault(metric_id, []).append(e.id)
        components = dict.fromkeys(
            c
            for m in metric_users
            for c in metric_type(catalog[m]).components(catalog[m])
        )
        cuped_ids = {e.id for e in experiments if e.cuped_days > 0}
        cuped = tuple(
            m
            for m, ids in metric_users.items()
            if metric_type(catalog[m]).cuped and cuped_ids & set(ids)
        )
        for m in cuped:
            sql_cuped(catalog[m].type, engine)
        dims = dict.fromkeys(d for e in experiments for d in e.dimensions)
        return cls(
            tuple(experiments),
            catalog,
            metric_users,
            tuple(components),
            tuple(dims),
            cuped,
        )

    @property
    def outcome_events(self) -> list[str]:
        """The events any metric reads (exposures aside), as the Polars scan."""
        extra = {
            e
            for m in self.metric_users
            for e in metric_type(self.catalog[m]).log_events(self.catalog[m])
        }
        return sorted(({c.event for c in self.components} | extra) - {EXPOSURE})

    def _with_detail(self, detail: str) -> list[str]:
        return [
            m
            for m in self.metric_users
            if metric_type(self.catalog[m]).detail == detail
        ]

    @property
    def survival_metrics(self) -> list[str]:
        """The ``time_to_event`` metrics (Kaplan–Meier inputs)."""
        return self._with_detail("survival")

    @property
    def capped_metrics(self) -> list[str]:
        """The mean metrics with a ``cap`` (each user's value capped daily)."""
        return [m for m in self.metric_users if self.catalog[m].cap is not None]

    @property
    def category_metrics(self) -> list[str]:
        """The ``categorical`` metrics (one result per category)."""
        return self._with_detail("categories")

    @property
    def row_columns(self) -> list[str]:
        """The columns metric filters test and categorical metrics read."""
        filters = {column for c in self.components for column, _ in c.filter}
        categories = {self.catalog[m].category for m in self.category_metrics}
        return sorted(filters | {c for c in categories if c is not None})

    def index(self, metric_id: str) -> int:
        """The metric's number, naming its wide columns ``m<i>_…``."""
        return list(self.metric_users).index(metric_id)

    def _components(self, metric_id: str) -> list[exp.Expression]:
        metric = self.catalog[metric_id]
        return [col(c.name) for c in metric_type(metric).components(metric)]

    def values(self, metric_id: str) -> dict[str, exp.Expression]:
        """The metric's user values from its component columns."""
        return sql_values(self.catalog[metric_id].type, "sql")(
            self._components(metric_id)
        )

    def pre_values(self, metric_id: str) -> dict[str, exp.Expression]:
        """A CUPED metric's covariates (x₀, …) from its pre-period components."""
        cuped = sql_cuped(self.catalog[metric_id].type, "sql")
        return cuped.pre(self._components(metric_id))

    def pre_columns(self, metric_id: str) -> dict[str, str]:
        """A CUPED metric's covariate → its column ``<covariate>_<i>``."""
        i = self.index(metric_id)
        return {name: f"{name}_{i}" for name in self.pre_values(metric_id)}

    def entry_sums(self, metric_id: str) -> dict[str, exp.Expression]:
        """The covariate sums a user adds on entering, from the people columns."""
        cuped = sql_cuped(self.catalog[metric_id].type, "sql")
        pre = {k: col(c) for k, c in self.pre_columns(metric_id).items()}
        return cuped.entry(pre)

    def sums(self, metric_id: str) -> dict[str, exp.Expression]:
        """A user's contribution to the metric's sums that change with their values.

        The user values and, with CUPED, the covariate sums that change with
        them (x·x₀, …), from the component columns and the people's (``p``)
        covariates.
        """
        sums = self.values(metric_id)
        if metric_id in self.cuped_metrics:
            cuped = sql_cuped(self.catalog[metric_id].type, "sql")
            pre = {k: col(c, "p") for k, c in self.pre_columns(metric_id).items()}
            sums |= cuped.changes(self._components(metric_id), pre)
        return sums


# --- the stages ----------------------------------------------------------------------


def _source(
    table: exp.Expression,
    plan: Plan,
    columns: Mapping[str, str],
    log_order: exp.Expression | None,
) -> exp.Select:
    """The events with the contract's names and types (``src``)."""
    extra = dict.fromkeys([*plan.dims, *plan.row_columns])

    def named(name: str) -> exp.Expression:
        return col(columns.get(name, name))

    return exp.select(
        exp.cast(named("timestamp"), "TIMESTAMPTZ").as_("ts"),
        exp.cast(named("user_id"), "VARCHAR").as_("user_id"),
        exp.cast(named("event"), "VARCHAR").as_("event"),
        exp.cast(named("experiment_id"), "VARCHAR").as_("experiment_id"),
        exp.cast(named("variant"), "VARCHAR").as_("variant"),
        exp.cast(named("value"), "DOUBLE").as_("value"),
        *[named(d).as_(d, quoted=True) for d in extra],
        (log_order if log_order is not None else num(0)).as_(LOG_ORDER),
    ).from_(table)


def _windows(plan: Plan, as_of: dt.date | None) -> exp.Query:
    """One row per experiment: its id and analysis window."""
    return union_all(
        [
            exp.select(
                text(e.id).as_("experiment_id"),
                instant(dt.datetime.combine(e.start, dt.time(), dt.UTC)).as_(
                    "window_start"
                ),
                instant(analysis_cutoff(e, as_of)).as_("window_end"),
            )
            for e in plan.experiments
        ]
    )


def _exposures(plan: Plan) -> exp.Select:
    """The configured experiments' exposure rows, flagged ``in_window``."""
    ts = col("ts", "e")
    in_window = exp.and_(
        exp.GTE(this=ts, expression=col("window_start", "w")),
        exp.LT(this=ts.copy(), expression=col("window_end", "w")),
    )
    return (
        exp.select(
            "e.*",
            col("window_end", "w"),
            exp.cast(in_window, "BOOLEAN").as_("in_window"),
        )
        .from_(exp.to_table("ev").as_("e"))
        .join(
            exp.to_table("windows").as_("w"),
            on=exp.EQ(
                this=col("experiment_id", "e"), expression=col("experiment_id", "w")
            ),
        )
        .where(exp.EQ(this=col("event", "e"), expression=text(EXPOSURE)))
    )


def _ranked() -> exp.Select:
    """In-window exposure rows numbered per (experiment, user) in time, log order."""
    keys = [col("experiment_id"), col("user_id")]
    k = window(exp.func("ROW_NUMBER"), keys, [asc(col("ts")), asc(col(LOG_ORDER))])
    return exp.select("*", k.as_("k")).from_("exposures").where(col("in_window"))


def _firsts(plan: Plan) -> exp.Select:
    """Each (experiment, user)'s first in-window exposure, with conflict time."""
    other = (
        exp.select(
            col("experiment_id", "r"),
            col("user_id", "r"),
            exp.func("MIN", col("ts", "r")).as_("conflict_at"),
        )
        .from_(exp.to_table("ranked").as_("r"))
        .join(
            exp.to_table("ranked").as_("f"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "r"),
                    expression=col("experiment_id", "f"),
                ),
                exp.EQ(this=col("user_id", "r"), expression=col("user_id", "f")),
                exp.EQ(this=col("k", "f"), expression=num(1)),
            ),
        )
        .where(exp.NEQ(this=col("variant", "r"), expression=col("variant", "f")))
        .group_by(col("experiment_id", "r"), col("user_id", "r"))
    )
    pre_start = exp.case()
    for e in plan.experiments:
        if e.cuped_days > 0:
            pre_start = pre_start.when(
                exp.EQ(this=col("experiment_id", "a"), expression=text(e.id)),
                days_before(col("ts", "a"), e.cuped_days),
            )
    if not any(e.cuped_days > 0 for e in plan.experiments):
        pre_start = exp.cast(exp.Null(), "TIMESTAMPTZ")
    return (
        exp.select(
            col("experiment_id", "a"),
            col("user_id", "a"),
            col("variant", "a"),
            col("ts", "a").as_("first_exposure"),
            pre_start.as_("pre_start"),
            col("window_end", "a"),
            col("conflict_at", "c"),
            day_of(col("ts", "a")).as_("exposure_day"),
            day_of(col("conflict_at", "c")).as_("conflict_day"),
            *[
                exp.func(
                    "COALESCE", exp.cast(col(d, "a"), "VARCHAR"), text(MISSING)
                ).as_(f"seg_{i}")
                for i, d in enumerate(plan.dims)
            ],
        )
        .from_(exp.to_table("ranked").as_("a"))
        .join(
            other.subquery("c"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "a"),
                    expression=col("experiment_id", "c"),
                ),
                exp.EQ(this=col("user_id", "a"), expression=col("user_id", "c")),
            ),
            join_type="LEFT",
        )
        .where(exp.EQ(this=col("k", "a"), expression=num(1)))
    )


def _filter_condition(component: Component) -> exp.Expression:
    """The component's equality filter on other columns (as the Polars engine)."""
    conditions: list[exp.Expression] = []
    for column, value in component.filter:
        if isinstance(value, bool):
            left = exp.func("LOWER", exp.cast(col(column), "VARCHAR"))
            conditions.append(exp.EQ(this=left, expression=text(str(value).lower())))
        elif isinstance(value, int | float):
            left = exp.TryCast(this=col(column), to=exp.DataType.build("DOUBLE"))
            conditions.append(exp.EQ(this=left, expression=num(float(value))))
        else:
            left = exp.cast(col(column), "VARCHAR")
            conditions.append(exp.EQ(this=left, expression=text(str(value))))
    return exp.and_(*conditions) if conditions else exp.true()


def component_condition(component: Component) -> exp.Expression:
    """Whether a joined row counts toward the component (as Component.condition)."""
    condition = exp.and_(
        exp.EQ(this=col("event"), expression=text(component.event)),
        _filter_condition(component),
    )
    if component.aggregate != "count":
        condition = exp.and_(
            condition, exp.Not(this=exp.Is(this=col("value"), expression=exp.Null()))
        )
    if component.window_days is not None:
        limit = days_after(col("first_exposure"), component.window_days)
        condition = exp.and_(condition, exp.LT(this=col("ts"), expression=limit))
    return condition


def _component_row(component: Component) -> exp.Expression:
    """Per joined row: its contribution to the component (1 or the value), or NULL."""
    contribution = num("1.0") if component.aggregate == "count" else col("value")
    return (
        exp.case()
        .when(component_condition(component), contribution)
        .as_(component.name)
    )


def _joined(plan: Plan) -> exp.Select:
    """Outcome rows × their user's assignments, up to the window's end, in phases."""
    ts = col("ts", "o")
    phase = (
        exp.case()
        .when(exp.GTE(this=ts, expression=col("first_exposure", "a")), text("in"))
        .when(exp.GTE(this=ts.copy(), expression=col("pre_start", "a")), text("pre"))
        .else_(text("before"))
    )
    counted = exp.GTE(this=ts.copy(), expression=col("first_exposure", "a"))
    filters = [col(c, "o") for c in plan.row_columns]
    return (
        exp.select(
            col("experiment_id", "a"),
            col("user_id", "a"),
            col("first_exposure", "a"),
            ts.copy(),
            col(LOG_ORDER, "o"),
            col("event", "o"),
            col("value", "o"),
            *filters,
            phase.as_("phase"),
            exp.case().when(counted, day_of(ts.copy())).as_("day"),
        )
        .from_(exp.to_table("outcomes").as_("o"))
        .join(
            exp.to_table("people_base").as_("a"),
            on=exp.and_(
                exp.EQ(this=col("user_id", "o"), expression=col("user_id", "a")),
                exp.LT(this=ts.copy(), expression=col("window_end", "a")),
            ),
        )
    )


def _user_day(plan: Plan) -> exp.Select:
    """Each component per (assignment, phase, day); the rows of each.

    Only the counted phase is split by day: the CUPED pre-period (and the rows
    before it) is one group per assignment, so its covariate x₀ is the component
    over the whole pre-period, as in the Polars engine.
    """
    keys = [col("experiment_id"), col("user_id"), col("phase"), col("day")]
    counted_day = (
        exp.case()
        .when(exp.EQ(this=col("phase"), expression=text("in")), col("day"))
        .as_("day")
    )
    rows = exp.select(
        col("experiment_id"),
        col("user_id"),
        col("phase"),
        counted_day,
        col("ts"),
        col(LOG_ORDER),
        *[_component_row(c) for c in plan.components],
    ).from_("joined")
    ranks = []
    for c in plan.components:
        if c.aggregate == "last":
            is_null = exp.Is(this=col(c.name), expression=exp.Null())
            rank = window(
                exp.func("ROW_NUMBER"),
                [*[k.copy() for k in keys], is_null],
                [desc(col("ts")), desc(col(LOG_ORDER))],
            )
            ranks.append(rank.as_("r_" + c.name))
    ranked = exp.select("*", *ranks).from_(rows.subquery("x"))

    def aggregate(c: Component) -> exp.Expression:
        if c.aggregate in ("count", "sum"):
            return exp.func("SUM", col(c.name)).as_(c.name)
        if c.aggregate == "max":
            return exp.func("MAX", col(c.name)).as_(c.name)
        first = exp.EQ(this=col("r_" + c.name), expression=num(1))
        return exp.func("MAX", exp.case().when(first, col(c.name))).as_(c.name)

    return (
        exp.select(
            *[k.copy() for k in keys],
            exp.func("COUNT", exp.Star()).as_("rows"),
            *[aggregate(c) for c in plan.components],
        )
        .from_(ranked.subquery("y"))
        .group_by(*[k.copy() for k in keys])
    )


def _pre_values(plan: Plan) -> exp.Select:
    """Per assignment: each CUPED metric's covariates over the pre-period (x₀, …)."""
    values = [
        v.as_(plan.pre_columns(m)[name])
        for m in plan.cuped_metrics
        for name, v in plan.pre_values(m).items()
    ]
    return (
        exp.select(col("experiment_id"), col("user_id"), *values)
        .from_("user_day")
        .where(exp.EQ(this=col("phase"), expression=text("pre")))
    )


def _before_counts() -> exp.Select:
    """Per assignment: the outcome rows before its first exposure."""
    return (
        exp.select(
            col("experiment_id"),
            col("user_id"),
            exp.func("SUM", col("rows")).as_("before"),
        )
        .from_("user_day")
        .where(exp.NEQ(this=col("phase"), expression=text("in")))
        .group_by(col("experiment_id"), col("user_id"))
    )


def _people(plan: Plan) -> exp.Select:
    """The assignments with their pre-period covariates and earlier rows."""

    def on(alias: str) -> exp.Expression:
        return exp.and_(
            exp.EQ(
                this=col("experiment_id", "a"), expression=col("experiment_id", alias)
            ),
            exp.EQ(this=col("user_id", "a"), expression=col("user_id", alias)),
        )

    x0 = [
        exp.func("COALESCE", col(c, "p"), num("0.0")).as_(c)
        for m in plan.cuped_metrics
        for c in plan.pre_columns(m).values()
    ]
    return (
        exp.select(
            "a.*",
            exp.func("COALESCE", col("before", "b"), num(0)).as_("before"),
            *x0,
        )
        .from_(exp.to_table("people_base").as_("a"))
        .join(exp.to_table("pre_values").as_("p"), on=on("p"), join_type="LEFT")
        .join(exp.to_table("before_counts").as_("b"), on=on("b"), join_type="LEFT")
    )


def _running(plan: Plan) -> exp.Query:
    """Each component's value at the end of each counted day of each assignment.

    A row is added on the day a user meets a second variant (their values drop
    to zero there). ``last`` carries the latest non-NULL value forward: its
    count of non-NULL values so far numbers the groups that share it.
    """
    keys = [col("experiment_id"), col("user_id")]
    comps = [col(c.name) for c in plan.components]
    days = union_all(
        [
            exp.select(*[k.copy() for k in keys], col("day"), *comps)
            .from_("user_day")
            .where(exp.EQ(this=col("phase"), expression=text("in"))),
            exp.select(
                *[k.copy() for k in keys],
                col("conflict_day").as_("day"),
                *[exp.cast(exp.Null(), "DOUBLE").as_(c.name) for c in plan.components],
            )
            .from_("people_base")
            .where(
                exp.Not(this=exp.Is(this=col("conflict_day"), expression=exp.Null()))
            ),
        ]
    )
    order = [asc(col("day"))]

    def running(c: Component) -> list[exp.Expression]:
        value = col(c.name)
        if c.aggregate in ("count", "sum"):
            total = exp.func("SUM", exp.func("COALESCE", value, num(0)))
            return [window(total, keys, order, running=True).as_(c.name)]
        if c.aggregate == "max":
            peak = exp.func("MAX", value)
            return [window(peak, keys, order, running=True).as_(c.name)]
        seen = exp.func("COUNT", value)
        return [
            value.copy(),
            window(seen, keys, order, running=True).as_("g_" + c.name),
        ]

    first = exp.select(
        *[k.copy() for k in keys],
        col("day"),
        *[e for c in plan.components for e in running(c)],
    ).from_(days.subquery("d"))
    carried = [
        window(
            exp.func("MAX", col(c.name)),
            [*[k.copy() for k in keys], col("g_" + c.name)],
        ).as_(c.name)
        if c.aggregate == "last"
        else col(c.name)
        for c in plan.components
    ]
    return exp.select(*[k.copy() for k in keys], col("day"), *carried).from_(
        first.subquery("f")
    )


def _metric_columns(plan: Plan) -> dict[str, exp.Expression]:
    """Every metric's user values as wide columns ``m<i>_<sum>`` (and x·x₀)."""
    columns: dict[str, exp.Expression] = {}
    for m in plan.metric_users:
        if m not in plan.capped_metrics:  # their changes are the cap stage's
            i = plan.index(m)
            columns |= {f"m{i}_{name}": v for name, v in plan.sums(m).items()}
    return columns


def _valued(plan: Plan) -> exp.Select:
    """Users' contributions per counted day; zero from their conflict day on."""
    conflict = col("conflict_day", "p")
    active = exp.or_(
        exp.Is(this=conflict, expression=exp.Null()),
        exp.LT(this=col("day", "r"), expression=conflict.copy()),
    )
    return (
        exp.select(
            col("experiment_id", "r"),
            col("user_id", "r"),
            col("variant", "p"),
            col("day", "r"),
            *[col(f"seg_{i}", "p") for i in range(len(plan.dims))],
            *[
                exp.cast(exp.case().when(active.copy(), v).else_(num(0)), "DOUBLE").as_(
                    name
                )
                for name, v in _metric_columns(plan).items()
            ],
        )
        .from_(exp.to_table("running").as_("r"))
        .join(
            exp.to_table("people").as_("p"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "r"),
                    expression=col("experiment_id", "p"),
                ),
                exp.EQ(this=col("user_id", "r"), expression=col("user_id", "p")),
            ),
        )
    )


def _changes(plan: Plan) -> exp.Select:
    """Each contribution less the same on the user's previous day."""
    keys = [col("experiment_id"), col("user_id")]
    order = [asc(col("day"))]
    names = list(_metric_columns(plan))
    return exp.select(
        col("experiment_id"),
        col("variant"),
        col("day"),
        *[col(f"seg_{i}") for i in range(len(plan.dims))],
        *[
            exp.Sub(
                this=col(n),
                expression=window(
                    exp.func("LAG", col(n), num(1), num("0.0")), keys, order
                ),
            ).as_(n)
            for n in names
        ],
    ).from_("valued")


def _cap_stages(plan: Plan, m: str) -> list[tuple[str, exp.Query]]:
    """A capped mean's stages (as :mod:`cxlab.summaries.cap`), ``<stage>_<i>``.

    ``cap_days``: per experiment, the days something happens (a counted row, an
    entry, a conflict); ``cap_values``: every user on each of those days from
    their entry on, with their value x at the end of the day (the last one
    before carried forward, 0 without events); ``cap_level``: per (experiment,
    day) the percentile p of the active users' x, pooled over the arms;
    ``cap_capped``: x capped at it; ``cap_changes``: each user's contributions
    less their previous day's.
    """
    i = plan.index(m)
    metric = plan.catalog[m]
    assert metric.cap is not None
    (component,) = metric_type(metric).components(metric)
    users = plan.metric_users[m]
    user = [col("experiment_id"), col("user_id")]
    days = union_all(
        [
            exp.select(col("experiment_id"), col("day"))
            .from_("user_day")
            .where(
                exp.and_(
                    exp.EQ(this=col("phase"), expression=text("in")),
                    is_in(col("experiment_id"), users),
                )
            ),
            exp.select(col("experiment_id"), col("exposure_day").as_("day"))
            .from_("people_base")
            .where(is_in(col("experiment_id"), users)),
            exp.select(col("experiment_id"), col("conflict_day").as_("day"))
            .from_("people_base")
            .where(
                exp.and_(
                    is_in(col("experiment_id"), users),
                    exp.Not(
                        this=exp.Is(this=col("conflict_day"), expression=exp.Null())
                    ),
                )
            ),
        ]
    )
    cap_days = (
        exp.select(col("experiment_id"), col("day"))
        .from_(days.subquery("d"))
        .distinct()
    )
    conflict = col("conflict_day", "p")
    active = exp.or_(
        exp.Is(this=conflict, expression=exp.Null()),
        exp.LT(this=col("day", "d"), expression=conflict.copy()),
    )
    on_user = exp.and_(
        exp.EQ(this=col("experiment_id", "g"), expression=col("experiment_id", "r")),
        exp.EQ(this=col("user_id", "g"), expression=col("user_id", "r")),
        exp.EQ(this=col("day", "g"), expression=col("day", "r")),
    )
    ends = (
        exp.select(
            *[k.copy() for k in user],
            col("day"),
            exp.func("MAX", col(component.name)).as_("v"),
        )
        .from_("running")
        .group_by(*[k.copy() for k in user], col("day"))
    )
    pre = list(plan.pre_columns(m).values()) if m in plan.cuped_metrics else []
    grid = (
        exp.select(
            col("experiment_id", "p"),
            col("user_id", "p"),
            col("variant", "p"),
            col("day", "d"),
            *[col(f"seg_{k}", "p") for k in range(len(plan.dims))],
            *[col(c, "p") for c in pre],
            exp.cast(active, "BOOLEAN").as_("active"),
        )
        .from_(exp.to_table("people").as_("p"))
        .join(
            exp.to_table(f"cap_days_{i}").as_("d"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "p"),
                    expression=col("experiment_id", "d"),
                ),
                exp.GTE(this=col("day", "d"), expression=col("exposure_day", "p")),
            ),
        )
    )
    joined = (
        exp.select("g.*", col("v", "r"))
        .from_(grid.subquery("g"))
        .join(ends.subquery("r"), on=on_user, join_type="LEFT")
    )
    seen = window(exp.func("COUNT", col("v")), user, [asc(col("day"))], running=True)
    numbered = exp.select("*", seen.as_("seen")).from_(joined.subquery("j"))
    carried = window(exp.func("MAX", col("v")), [*user, col("seen")])
    kept = [
        "experiment_id",
        "user_id",
        "variant",
        "day",
        *[f"seg_{k}" for k in range(len(plan.dims))],
        *pre,
        "active",
    ]
    cap_values = exp.select(
        *[col(c) for c in kept],
        exp.func("COALESCE", carried, num("0.0")).as_("x"),
    ).from_(numbered.subquery("n"))
    return [
        (f"cap_days_{i}", cap_days),
        (f"cap_values_{i}", cap_values),
        (f"cap_level_{i}", _cap_level(i, metric.cap)),
        (f"cap_capped_{i}", _cap_capped(plan, i, component.name)),
        (f"cap_changes_{i}", _cap_changes(plan, m)),
    ]


def _cap_level(i: int, percentile: float) -> exp.Select:
    """Per (experiment, day) with users: the p-th percentile of the active users' x.

    Linear interpolation between order statistics, as numpy's default and
    Polars' ``quantile(p, "linear")`` compute it: with n values sorted and
    h = (n − 1)·p, the cap is v₍⌊h⌋₎ + (h − ⌊h⌋)·(v₍⌈h⌉₎ − v₍⌊h⌋₎) (Hyndman & Fan
    1996, Sample quantiles in statistical packages, definition 7). Order
    statistics by ROW_NUMBER, so every dialect computes it exactly; NULL on a
    day without active users.
    """
    part = [col("experiment_id"), col("day")]
    ranked = (
        exp.select(
            *[p.copy() for p in part],
            col("x"),
            window(exp.func("ROW_NUMBER"), part, [asc(col("x"))]).as_("rn"),
            window(exp.func("COUNT", exp.Star()), part).as_("cnt"),
        )
        .from_(f"cap_values_{i}")
        .where(col("active"))
    )
    h = exp.Mul(
        this=exp.Paren(
            this=exp.Sub(this=exp.cast(col("cnt"), "DOUBLE"), expression=num("1.0"))
        ),
        expression=num(repr(float(percentile))),
    )
    positioned = exp.select(
        "*",
        h.as_("h"),
        exp.func("FLOOR", h.copy()).as_("lo"),
        exp.func("CEIL", h.copy()).as_("hi"),
    ).from_(ranked.subquery("r"))

    def at(position: str) -> exp.Expression:
        here = exp.EQ(
            this=exp.cast(col("rn"), "DOUBLE"),
            expression=exp.Add(this=col(position), expression=num("1.0")),
        )
        return exp.func("MAX", exp.case().when(here, col("x")))

    ends = (
        exp.select(
            *[p.copy() for p in part],
            at("lo").as_("v_lo"),
            at("hi").as_("v_hi"),
            exp.func("MAX", exp.Sub(this=col("h"), expression=col("lo"))).as_("frac"),
        )
        .from_(positioned.subquery("q"))
        .group_by(*[p.copy() for p in part])
    )
    v_lo, v_hi = col("v_lo"), col("v_hi")
    level = (
        exp.case()
        .when(exp.EQ(this=v_lo, expression=v_hi), v_lo.copy())
        .else_(
            exp.Add(
                this=exp.Mul(
                    this=col("frac"),
                    expression=exp.Paren(
                        this=exp.Sub(this=v_hi.copy(), expression=v_lo.copy())
                    ),
                ),
                expression=v_lo.copy(),
            )
        )
    )
    return exp.select(*[p.copy() for p in part], level.as_("cap")).from_(
        ends.subquery("e")
    )


def _cap_capped(plan: Plan, i: int, component: str) -> exp.Select:
    """Each user's x capped at the day's level (uncapped on a day without one)."""
    x, cap = col("x", "v"), col("cap", "c")
    capped = (
        exp.case()
        .when(
            exp.or_(
                exp.Is(this=cap, expression=exp.Null()),
                exp.LTE(this=x, expression=cap.copy()),
            ),
            x.copy(),
        )
        .else_(cap.copy())
    )
    return (
        exp.select("v.*", capped.as_(component))
        .from_(exp.to_table(f"cap_values_{i}").as_("v"))
        .join(
            exp.to_table(f"cap_level_{i}").as_("c"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "v"),
                    expression=col("experiment_id", "c"),
                ),
                exp.EQ(this=col("day", "v"), expression=col("day", "c")),
            ),
            join_type="LEFT",
        )
    )


def _cap_changes(plan: Plan, m: str) -> exp.Select:
    """A capped mean's contributions, 0 when inactive, less the previous day's."""
    i = plan.index(m)
    user = [col("experiment_id"), col("user_id")]
    now = {
        f"m{i}_{name}": exp.cast(
            exp.case().when(col("active", "p"), v).else_(num(0)), "DOUBLE"
        )
        for name, v in plan.sums(m).items()
    }
    valued = exp.select(
        col("experiment_id", "p"),
        col("user_id", "p"),
        col("variant", "p"),
        col("day", "p"),
        *[col(f"seg_{k}", "p") for k in range(len(plan.dims))],
        *[v.as_(k) for k, v in now.items()],
    ).from_(exp.to_table(f"cap_capped_{i}").as_("p"))
    previous = {
        k: window(exp.func("LAG", col(k), num(1), num("0.0")), user, [asc(col("day"))])
        for k in now
    }
    return exp.select(
        col("experiment_id"),
        col("variant"),
        col("day"),
        *[col(f"seg_{k}") for k in range(len(plan.dims))],
        *[exp.Sub(this=col(k), expression=previous[k]).as_(k) for k in now],
    ).from_(valued.subquery("u"))


def _cap_rows(plan: Plan) -> list[exp.Select]:
    """Each capped mean's cap per (experiment, day): the level from that day on."""
    out = []
    for m in plan.capped_metrics:
        i = plan.index(m)
        days = (
            exp.select(col("experiment_id"), col("day"))
            .from_(f"cap_values_{i}")
            .distinct()
        )
        level = col("cap", "c")
        out.append(
            exp.select(
                *_row(
                    "cap",
                    {
                        "experiment_id": col("experiment_id", "d"),
                        "metric": text(m),
                        "day": col("day", "d"),
                        "cap": level,
                    },
                )
            )
            .from_(days.subquery("d"))
            .join(
                exp.to_table(f"cap_level_{i}").as_("c"),
                on=exp.and_(
                    exp.EQ(
                        this=col("experiment_id", "d"),
                        expression=col("experiment_id", "c"),
                    ),
                    exp.EQ(this=col("day", "d"), expression=col("day", "c")),
                ),
                join_type="LEFT",
            )
        )
    return out


def _micro(value: str) -> exp.Interval:
    return exp.Interval(this=text(value), unit=exp.Var(this="MICROSECOND"))


def _before(moment: exp.Expression) -> exp.Expression:
    """The instant just before ``moment`` (one microsecond earlier)."""
    return exp.Sub(this=moment, expression=_micro("1"))


def _least(*values: exp.Expression) -> exp.Expression:
    """The least of the non-NULL values (NULL if all are), as min_horizontal."""
    least = values[0]
    for value in values[1:]:
        least = (
            exp.case()
            .when(exp.Is(this=least.copy(), expression=exp.Null()), value.copy())
            .when(exp.Is(this=value.copy(), expression=exp.Null()), least.copy())
            .when(exp.LTE(this=least.copy(), expression=value.copy()), least.copy())
            .else_(value.copy())
        )
    return least


def _minutes(start: exp.Expression, end: exp.Expression) -> exp.Expression:
    """Whole minutes from ``start`` to ``end``, rounded up (as :mod:`.voice`)."""
    micros = exp.TimestampDiff(
        this=end, expression=start, unit=exp.Var(this="MICROSECOND")
    )
    return exp.cast(
        exp.func(
            "FLOOR",
            exp.Div(
                this=exp.Paren(this=exp.Add(this=micros, expression=num(59_999_999))),
                expression=num("60000000.0"),
            ),
        ),
        "BIGINT",
    )


def _survival_stages(plan: Plan, m: str) -> list[tuple[str, exp.Query]]:
    """A time_to_event metric's stages (as :mod:`cxlab.summaries.voice`).

    ``tte_rows``: the counted start and end rows; ``tte_times``: per user the
    first start and the first end after it, the moment no later state is known
    (the window's end or the log's last event, ``final``) and the last day
    their state can change (``stop``); ``tte_states``: the user's state
    (minutes, kind) at the end of each such day.
    """
    i = plan.index(m)
    metric = plan.catalog[m]
    (start,) = metric_type(metric).components(metric)
    assert metric.end_event is not None
    horizon = round(float(metric.horizon_hours or 0) * 60)
    is_end = exp.EQ(this=col("event"), expression=text(metric.end_event))
    rows = (
        exp.select(
            col("experiment_id"),
            col("user_id"),
            col("ts"),
            col(LOG_ORDER),
            exp.cast(component_condition(start), "BOOLEAN").as_("is_start"),
            exp.cast(is_end, "BOOLEAN").as_("is_end"),
        )
        .from_("joined")
        .where(
            exp.and_(
                exp.EQ(this=col("phase"), expression=text("in")),
                is_in(col("experiment_id"), plan.metric_users[m]),
                exp.or_(component_condition(start), is_end.copy()),
            )
        )
    )
    user = [col("experiment_id"), col("user_id")]
    ranked = (
        exp.select(
            "*",
            window(
                exp.func("ROW_NUMBER"), user, [asc(col("ts")), asc(col(LOG_ORDER))]
            ).as_("k"),
        )
        .from_(f"tte_rows_{i}")
        .where(col("is_start"))
    )
    starts = (
        exp.select(
            col("experiment_id"),
            col("user_id"),
            col("ts").as_("s"),
            col(LOG_ORDER).as_("so"),
        )
        .from_(ranked.subquery("r"))
        .where(exp.EQ(this=col("k"), expression=num(1)))
    )
    later = exp.or_(
        exp.GT(this=col("ts", "e"), expression=col("s", "a")),
        exp.and_(
            exp.EQ(this=col("ts", "e"), expression=col("s", "a")),
            exp.GT(this=col(LOG_ORDER, "e"), expression=col("so", "a")),
        ),
    )
    ended = (
        exp.select(
            col("experiment_id", "a"),
            col("user_id", "a"),
            col("s", "a"),
            exp.func("MIN", col("ts", "e")).as_("e"),
        )
        .from_(starts.subquery("a"))
        .join(
            exp.to_table(f"tte_rows_{i}").as_("e"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "a"),
                    expression=col("experiment_id", "e"),
                ),
                exp.EQ(this=col("user_id", "a"), expression=col("user_id", "e")),
                col("is_end", "e"),
                later,
            ),
            join_type="LEFT",
        )
        .group_by(col("experiment_id", "a"), col("user_id", "a"), col("s", "a"))
    )
    final = _least(col("window_end", "p"), col("last_event", "l"))
    reach = exp.Add(
        this=col("s", "t"),
        expression=exp.Interval(this=text(str(horizon)), unit=exp.Var(this="MINUTE")),
    )
    horizon_day = exp.case().when(
        exp.GTE(this=final.copy(), expression=reach),
        day_of(_before(reach.copy())),
    )
    conflict = col("conflict_day", "p")
    stop = _least(
        day_of(col("e", "t")), horizon_day, day_of(_before(final.copy())), conflict
    )
    first_day = day_of(col("s", "t"))
    times = (
        exp.select(
            col("experiment_id", "t"),
            col("user_id", "t"),
            col("variant", "p"),
            col("s", "t"),
            col("e", "t"),
            conflict.copy(),
            final.as_("final"),
            first_day.as_("first_day"),
            stop.as_("stop"),
        )
        .from_(ended.subquery("t"))
        .join(
            exp.to_table("people_base").as_("p"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "t"),
                    expression=col("experiment_id", "p"),
                ),
                exp.EQ(this=col("user_id", "t"), expression=col("user_id", "p")),
            ),
        )
        .join(
            exp.select(exp.func("MAX", col("ts")).as_("last_event"))
            .from_("src")
            .subquery("l"),
            join_type="CROSS",
        )
        .where(
            exp.or_(
                exp.Is(this=conflict.copy(), expression=exp.Null()),
                exp.LT(this=first_day.copy(), expression=conflict.copy()),
            )
        )
    )
    return [
        (f"tte_rows_{i}", rows),
        (f"tte_times_{i}", times),
        (f"tte_states_{i}", _survival_states(i, horizon)),
    ]


def _survival_states(i: int, horizon: int) -> exp.Select:
    """Each user's (minutes, kind) at the end of every day their state can change.

    The days: each from the first start to ``stop``, then the day resolved and
    the day excluded; none after the day of ``final``.
    """
    offsets = union_all(
        [
            exp.select(
                exp.Interval(this=text(str(k)), unit=exp.Var(this="DAY")).as_("k")
            )
            for k in range(horizon // (24 * 60) + 3)
        ]
    )
    ranged = (
        exp.select(
            "t.*",
            day_of(exp.Add(this=col("first_day", "t"), expression=col("k", "o"))).as_(
                "day"
            ),
        )
        .from_(exp.to_table(f"tte_times_{i}").as_("t"))
        .join(offsets.subquery("o"), join_type="CROSS")
    )
    days = union_all(
        [
            exp.select("*")
            .from_(ranged.subquery("r"))
            .where(exp.LTE(this=col("day"), expression=col("stop"))),
            exp.select("*", day_of(col("e")).as_("day")).from_(f"tte_times_{i}"),
            exp.select("*", col("conflict_day").as_("day")).from_(f"tte_times_{i}"),
        ]
    )
    distinct = (
        exp.select("*")
        .from_(days.subquery("d"))
        .where(
            exp.and_(
                exp.Not(this=exp.Is(this=col("day"), expression=exp.Null())),
                exp.LTE(this=col("day"), expression=day_of(col("final"))),
            )
        )
        .distinct()
    )
    midnight = exp.Add(
        this=exp.cast(col("day"), "TIMESTAMPTZ"),
        expression=exp.Interval(this=text("1"), unit=exp.Var(this="DAY")),
    )
    as_of_moment = _least(midnight, col("final"))
    done = exp.and_(
        exp.Not(this=exp.Is(this=col("e"), expression=exp.Null())),
        exp.GTE(this=col("day"), expression=day_of(col("e"))),
    )
    taken = _minutes(col("s"), col("e"))
    limit = num(horizon)
    minutes = (
        exp.case()
        .when(done, _least(taken, limit))
        .else_(_least(_minutes(col("s"), as_of_moment), limit.copy()))
    )
    state = (
        exp.case()
        .when(
            exp.and_(
                exp.Not(this=exp.Is(this=col("conflict_day"), expression=exp.Null())),
                exp.GTE(this=col("day"), expression=col("conflict_day")),
            ),
            num(GONE),
        )
        .when(
            exp.and_(done.copy(), exp.LTE(this=taken.copy(), expression=limit.copy())),
            num(RESOLVED),
        )
        .when(done.copy(), num(LATE))
        .else_(num(OPEN))
    )
    return exp.select(
        col("experiment_id"),
        col("user_id"),
        col("variant"),
        col("day"),
        minutes.as_("minutes"),
        state.as_("state"),
    ).from_(distinct.subquery("u"))


def _survival_rows(plan: Plan) -> list[exp.Select]:
    """Per (experiment, variant, day, minutes, state): users in less users out."""
    out = []
    user = [col("experiment_id"), col("user_id")]
    for m in plan.survival_metrics:
        i = plan.index(m)
        order = [asc(col("day"))]
        previous = exp.select(
            "*",
            window(exp.func("LAG", col("minutes")), user, order).as_("prev_minutes"),
            window(exp.func("LAG", col("state")), user, order).as_("prev_state"),
        ).from_(f"tte_states_{i}")
        keys = ("experiment_id", "variant", "day")
        moves = union_all(
            [
                exp.select(
                    *[col(k) for k in keys],
                    col("minutes"),
                    col("state"),
                    num(1).as_("n"),
                )
                .from_(f"tte_states_{i}")
                .where(exp.NEQ(this=col("state"), expression=num(GONE))),
                exp.select(
                    *[col(k) for k in keys],
                    col("prev_minutes").as_("minutes"),
                    col("prev_state").as_("state"),
                    num(-1).as_("n"),
                )
                .from_(previous.subquery("v"))
                .where(
                    exp.and_(
                        exp.Not(
                            this=exp.Is(this=col("prev_state"), expression=exp.Null())
                        ),
                        exp.NEQ(this=col("prev_state"), expression=num(GONE)),
                    )
                ),
            ]
        )
        grouping = [col(k) for k in (*keys, "minutes", "state")]
        total = exp.func("SUM", col("n"))
        given = {
            "experiment_id": col("experiment_id"),
            "variant": col("variant"),
            "metric": text(m),
            "day": col("day"),
            "minutes": col("minutes"),
            "state": col("state"),
            "state_users": total,
        }
        out.append(
            exp.select(*_row("survival", given))
            .from_(moves.subquery("m"))
            .group_by(*grouping)
            .having(exp.NEQ(this=total.copy(), expression=num(0)))
        )
    return out


def _category_rows(plan: Plan) -> exp.Query:
    """Each categorical metric's counted events with their category (as .voice).

    An event whose category is NULL is in :data:`cxlab.metrics.NO_CATEGORY`.
    """
    selects = []
    for m in plan.category_metrics:
        metric = plan.catalog[m]
        (component,) = metric_type(metric).components(metric)
        assert metric.category is not None
        category = exp.func(
            "COALESCE", exp.cast(col(metric.category), "VARCHAR"), text(NO_CATEGORY)
        )
        selects.append(
            exp.select(
                col("experiment_id"),
                col("user_id"),
                text(m).as_("metric"),
                category.as_("category"),
                col("day"),
                col("ts"),
                col(LOG_ORDER),
            )
            .from_("joined")
            .where(
                exp.and_(
                    exp.EQ(this=col("phase"), expression=text("in")),
                    is_in(col("experiment_id"), plan.metric_users[m]),
                    component_condition(component),
                )
            )
        )
    return union_all(selects)


def _category_kept() -> exp.Select:
    """The category rows of users before any day they met a second variant."""
    conflict = col("conflict_day", "p")
    return (
        exp.select(
            "c.*",
            col("variant", "p"),
            conflict.copy(),
        )
        .from_(exp.to_table("category_rows").as_("c"))
        .join(
            exp.to_table("people_base").as_("p"),
            on=exp.and_(
                exp.EQ(
                    this=col("experiment_id", "c"),
                    expression=col("experiment_id", "p"),
                ),
                exp.EQ(this=col("user_id", "c"), expression=col("user_id", "p")),
            ),
        )
        .where(
            exp.or_(
                exp.Is(this=conflict.copy(), expression=exp.Null()),
                exp.LT(this=col("day", "c"), expression=conflict.copy()),
            )
        )
    )


CATEGORY_USER = ("experiment_id", "metric", "user_id", "variant", "conflict_day")


def _category_days() -> exp.Select:
    """Per (user, category, day): the events that day and the user's total so far."""
    keys = [col(k) for k in (*CATEGORY_USER, "category", "day")]
    per_day = (
        exp.select(*keys, exp.func("COUNT", exp.Star()).as_("cnt"))
        .from_("category_kept")
        .group_by(*[k.copy() for k in keys])
    )
    total = window(
        exp.func("SUM", col("cnt")),
        [col("experiment_id"), col("metric"), col("user_id"), col("category")],
        [asc(col("day"))],
        running=True,
    )
    return exp.select("*", total.as_("total")).from_(per_day.subquery("d"))


def _category_output() -> exp.Select:
    """Per (experiment, metric, variant, category, day): changes of Σx, Σx², firsts.

    A user's x (their events of the category) grows by the day's count and x² from
    (total − count)² to total²; on the day they meet a second variant both are
    taken back, and their first category (by time, then log order) with them.
    """
    out = ("experiment_id", "metric", "variant", "category")
    total, cnt = col("total"), col("cnt")
    before = exp.Paren(this=exp.Sub(this=total.copy(), expression=cnt.copy()))
    grown = exp.Sub(
        this=exp.Mul(this=total.copy(), expression=total.copy()),
        expression=exp.Mul(this=before, expression=before.copy()),
    )
    conflicted = exp.Not(this=exp.Is(this=col("conflict_day"), expression=exp.Null()))
    last = exp.func("MAX", col("total"))

    def move(day: str, sx: exp.Expression, sxx: exp.Expression, first: int) -> list:
        return [
            *[col(k) for k in out],
            col(day).as_("day"),
            exp.cast(sx, "DOUBLE").as_("sx"),
            exp.cast(sxx, "DOUBLE").as_("sxx"),
            exp.cast(num(first), "DOUBLE").as_("fc"),
        ]

    ranked = exp.select(
        "*",
        window(
            exp.func("ROW_NUMBER"),
            [col("experiment_id"), col("metric"), col("user_id")],
            [asc(col("ts")), asc(col(LOG_ORDER))],
        ).as_("k"),
    ).from_("category_kept")
    firsts = (
        exp.select("*")
        .from_(ranked.subquery("r"))
        .where(exp.EQ(this=col("k"), expression=num(1)))
    )
    moves = union_all(
        [
            exp.select(*move("day", cnt, grown, 0)).from_("category_days"),
            exp.select(
                *move(
                    "conflict_day",
                    _neg(last),
                    _neg(exp.Mul(this=last.copy(), expression=last.copy())),
                    0,
                )
            )
            .from_("category_days")
            .where(conflicted)
            .group_by(*[col(k) for k in (*CATEGORY_USER, "category")]),
            exp.select(*move("day", num(0), num(0), 1)).from_(firsts.subquery("f1")),
            exp.select(*move("conflict_day", num(0), num(0), -1))
            .from_(firsts.subquery("f2"))
            .where(conflicted.copy()),
        ]
    )
    keys = [col(k) for k in (*out, "day")]
    given = {
        **{k.name: k.copy() for k in keys},
        "sum_x": exp.func("SUM", col("sx")),
        "sum_xx": exp.func("SUM", col("sxx")),
        "first_category": exp.func("SUM", col("fc")),
    }
    return (
        exp.select(*_row("category", given))
        .from_(moves.subquery("m"))
        .group_by(*[k.copy() for k in keys])
    )


# --- the output ----------------------------------------------------------------------


def _row(kind: str, given: Mapping[str, exp.Expression]) -> list[exp.Expression]:
    """One select list of the output: the given columns, the others NULL, typed."""
    values = {"kind": text(kind), **given}
    return [
        exp.cast(values.get(name, exp.Null()), sql_type).as_(name)
        for name, sql_type in OUTPUT_COLUMNS.items()
    ]


def _summed(
    plan: Plan, grouping: Sequence[exp.Expression], segment: int | None
) -> list[exp.Select]:
    """The changes summed per (arm[, segment], day), one select per metric."""
    kind = "metric" if segment is None else "segment_metric"
    dims_of = {e.id: e.dimensions for e in plan.experiments}
    out = []
    for m, users in plan.metric_users.items():
        i = plan.index(m)
        if segment is not None:
            users = [u for u in users if plan.dims[segment] in dims_of[u]]
            if not users:
                continue
        filled = plan.sums(m).keys()
        given = {
            "experiment_id": col("experiment_id"),
            "variant": col("variant"),
            "metric": text(m),
            "day": col("day"),
            **{
                ("responders" if name == RESPONDERS else name): exp.func(
                    "SUM", col(f"m{i}_{name}")
                )
                for name in filled
            },
        }
        if segment is not None:
            given |= {
                "dimension": text(plan.dims[segment]),
                "segment": col(f"seg_{segment}"),
            }
        out.append(
            exp.select(*_row(kind, given))
            .from_(f"cap_changes_{i}" if m in plan.capped_metrics else "changes")
            .where(is_in(col("experiment_id"), users))
            .group_by(*[g.copy() for g in grouping])
        )
    return out


def _neg(e: exp.Expression) -> exp.Expression:
    return exp.Neg(this=exp.Paren(this=e))


def _pre_moves(plan: Plan, m: str) -> dict[str, tuple[exp.Expression, exp.Expression]]:
    """A metric's entry sums (x₀, x₀², …): added on entering, taken back on leaving."""
    i = plan.index(m)
    return {
        f"{name}_{i}": (v, _neg(v.copy())) for name, v in plan.entry_sums(m).items()
    }


def _arm_rows(plan: Plan) -> list[exp.Select]:
    """Users entering and leaving each arm (and segment); their pre-period sums."""
    conflicted = exp.Not(this=exp.Is(this=col("conflict_day"), expression=exp.Null()))
    out = []

    def moves(values: dict[str, tuple[exp.Expression, exp.Expression]]) -> exp.Query:
        keys = {
            "experiment_id": (col("experiment_id"), col("experiment_id")),
            "variant": (col("variant"), col("variant")),
            "day": (col("exposure_day"), col("conflict_day")),
        }
        both = keys | values
        return union_all(
            [
                exp.select(*[v[0].copy().as_(k) for k, v in both.items()]).from_(
                    "people"
                ),
                exp.select(*[v[1].copy().as_(k) for k, v in both.items()])
                .from_("people")
                .where(conflicted.copy()),
            ]
        )

    arm_moves = {
        "entered": (num(1), num(0)),
        "conflicts": (num(0), num(1)),
        "pre_exposure_events": (col("before"), _neg(col("before"))),
    }
    for m in plan.cuped_metrics:
        arm_moves |= _pre_moves(plan, m)
    arm = moves(arm_moves)
    keys = [col("experiment_id"), col("variant"), col("day")]
    sums = ["entered", "conflicts", "pre_exposure_events"]
    out.append(
        exp.select(
            *_row(
                "arm",
                {
                    **{k.name: k.copy() for k in keys},
                    **{s: exp.func("SUM", col(s)) for s in sums},
                },
            )
        )
        .from_(arm.subquery("m"))
        .group_by(*keys)
    )
    for m in plan.cuped_metrics:
        i = plan.index(m)
        entry = plan.entry_sums(m)
        if not entry:  # NPS: the covariate sums enter with the answer
            continue
        given = {
            **{k.name: k.copy() for k in keys},
            "metric": text(m),
            **{name: exp.func("SUM", col(f"{name}_{i}")) for name in entry},
        }
        out.append(
            exp.select(*_row("metric", given))
            .from_(arm.subquery("m"))
            .where(is_in(col("experiment_id"), plan.metric_users[m]))
            .group_by(*[k.copy() for k in keys])
        )
    for i, d in enumerate(plan.dims):
        users = [e.id for e in plan.experiments if d in e.dimensions]
        seg = moves(
            {
                "segment": (col(f"seg_{i}"), col(f"seg_{i}")),
                "entered": (num(1), num(0)),
                "conflicts": (num(0), num(1)),
            }
        )
        grouping = [*[k.copy() for k in keys], col("segment")]
        out.append(
            exp.select(
                *_row(
                    "segment_arm",
                    {
                        **{k.name: k.copy() for k in keys},
                        "dimension": text(d),
                        "segment": col("segment"),
                        "entered": exp.func("SUM", col("entered")),
                        "conflicts": exp.func("SUM", col("conflicts")),
                    },
                )
            )
            .from_(seg.subquery("s"))
            .where(is_in(col("experiment_id"), users))
            .group_by(*grouping)
        )
    return out


def _exposure_rows() -> list[exp.Select]:
    """Exposure rows (in the window or not) and users first seen, per arm and day."""
    keys = [col("experiment_id"), col("variant")]
    day = day_of(col("ts"))
    rows = (
        exp.select(
            *_row(
                "arm",
                {
                    "experiment_id": col("experiment_id"),
                    "variant": col("variant"),
                    "day": day,
                    "exposure_rows": exp.func("COUNT", exp.Star()),
                    "in_window_rows": exp.func("SUM", flag(col("in_window"))),
                },
            )
        )
        .from_("exposures")
        .group_by(*[k.copy() for k in keys], day.copy())
    )
    first_seen = (
        exp.select(
            *[k.copy() for k in keys],
            day_of(exp.func("MIN", col("ts"))).as_("day"),
        )
        .from_("ranked")
        .group_by(*[k.copy() for k in keys], col("user_id"))
    )
    seen = (
        exp.select(
            *_row(
                "arm",
                {
                    "experiment_id": col("experiment_id"),
                    "variant": col("variant"),
                    "day": col("day"),
                    "first_seen": exp.func("COUNT", exp.Star()),
                },
            )
        )
        .from_(first_seen.subquery("u"))
        .group_by(*[k.copy() for k in keys], col("day"))
    )
    return [rows, seen]


def _log_row() -> exp.Select:
    """The day of the log's last event (of the whole log, not cut at as-of)."""
    return exp.select(*_row("log", {"day": day_of(exp.func("MAX", col("ts")))})).from_(
        "src"
    )


def attribution_stages(
    plan: Plan,
    table: str | exp.Expression,
    *,
    as_of: dt.date | None,
    log_order: exp.Expression | None,
) -> list[tuple[str, exp.Query]]:
    """The first stages, shared by the reduction and the ledger (:mod:`.ledger`).

    ``src`` and ``ev`` (the log, cut at ``as_of``), ``windows``, ``exposures``
    (the configured experiments' rows, flagged ``in_window``), ``ranked``,
    ``people_base`` (one row per (experiment, user)) and ``outcomes`` (the rows
    of the events some metric reads).
    """
    source = exp.to_table(table) if isinstance(table, str) else table
    columns = dict(plan.experiments[0].columns)
    ev = exp.select("*").from_("src")
    if as_of is not None:
        cutoff = instant(analysis_cutoff_of_day(as_of))
        ev = ev.where(exp.LT(this=col("ts"), expression=cutoff))
    outcomes = (
        exp.select("*").from_("ev").where(is_in(col("event"), plan.outcome_events))
    )
    return [
        ("src", _source(source, plan, columns, log_order)),
        ("ev", ev),
        ("windows", _windows(plan, as_of)),
        ("exposures", _exposures(plan)),
        ("ranked", _ranked()),
        ("people_base", _firsts(plan)),
        ("outcomes", outcomes),
    ]


def build_reduction(
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    table: str | exp.Expression = "events",
    as_of: dt.date | None = None,
    log_order: exp.Expression | None = None,
    engine: str = "sql",
) -> exp.Query:
    """The whole reduction as one SQLGlot query over the events table.

    Args:
        experiments: the experiments (sharing one ``columns`` mapping).
        catalog: the metric catalog.
        table: the events table's name, or an expression reading the log.
        as_of: analyse the data as it stood at the end of this UTC day.
        log_order: an expression of the row's position in the log, which breaks
            ties in time (first exposure, last answer); without it rows at the
            same instant are in no particular order.
        engine: the engine's name, for the error of an unsupported metric type.

    Returns:
        The query; its rows are the :data:`OUTPUT_COLUMNS` table of changes.

    Raises:
        UnsupportedMetricError: a metric type the SQL cannot express yet.
        ValueError: no experiments.
    """
    if not experiments:
        raise ValueError("the SQL reduction needs at least one experiment")
    plan = Plan.of(experiments, catalog, engine)
    stages = attribution_stages(plan, table, as_of=as_of, log_order=log_order)
    stages += [
        ("joined", _joined(plan)),
        ("user_day", _user_day(plan)),
        ("pre_values", _pre_values(plan)),
        ("before_counts", _before_counts()),
        ("people", _people(plan)),
        ("running", _running(plan)),
        ("valued", _valued(plan)),
        ("changes", _changes(plan)),
    ]
    for m in plan.capped_metrics:
        stages += _cap_stages(plan, m)
    for m in plan.survival_metrics:
        stages += _survival_stages(plan, m)
    if plan.category_metrics:
        stages += [
            ("category_rows", _category_rows(plan)),
            ("category_kept", _category_kept()),
            ("category_days", _category_days()),
        ]
    arm = [col("experiment_id"), col("variant"), col("day")]
    parts = [
        _log_row(),
        *_exposure_rows(),
        *_arm_rows(plan),
        *_summed(plan, arm, None),
        *[
            s
            for i in range(len(plan.dims))
            for s in _summed(plan, [*arm, col(f"seg_{i}")], i)
        ],
        *([_category_output()] if plan.category_metrics else []),
        *_cap_rows(plan),
        *_survival_rows(plan),
    ]
    query = union_all(parts)
    for name, stage in stages:
        query = query.with_(name, as_=stage)
    return query


def render(query: exp.Query, dialect: str) -> str:
    """The query as SQL text of a dialect (one of :data:`DIALECTS`)."""
    return query.sql(dialect=dialect, pretty=True)


def parse(sql: str, dialect: str) -> exp.Expression:
    """Parse rendered SQL back (a check that a dialect's text is well formed)."""
    return sqlglot.parse_one(sql, dialect=dialect)
