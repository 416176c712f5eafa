"""The log's health and the row ledger (CONTRACT §1) as SQL, for the SQL engines.

:func:`build_health` follows the Polars engine's ledger
(:mod:`cxlab.summaries.set_aside`) on the reduction's first stages
(:func:`cxlab.sql.reduction.attribution_stages`), as common table expressions:

1. ``exposure_fates``: the configured experiments' exposure rows: outside the
   window; every in-window row of a user who saw two variants; the first
   (earliest, then in log order) assigns the user (``used``), later ones repeat.
   ``unknown``: exposure rows of experiments without a config.
2. ``pairs`` / ``judged`` / ``outcome_fates``: each outcome row with each of its
   user's assignments, ranked as :data:`cxlab.summaries.set_aside.RANK`; the
   best rank is the row's (equal ranks: the experiment listed first), a row of a
   user with no assignment is ``user_never_exposed``.
3. ``other_rows``: rows of events no metric reads: ``event_in_no_metric`` of an
   assigned user, else ``user_never_exposed``.
4. The rows per event type, the users, the rows of users in no analysed
   experiment and the outcome rows before a (kept) user's first exposure.

The output is one long table (:data:`HEALTH_COLUMNS`): counts by ``key`` and a
few example rows each, numbered ``rn``; :func:`log_health_of` turns it into the
same :class:`LogHealth` and :class:`RowLedger` the Polars engine fills. Examples
are picked in the Polars engine's order: log order, or time for outcome rows.
Two users' rows at the same instant tie there by a hash of their ids and here
by their ids, so only such exact ties may pick other examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import polars as pl
from sqlglot import exp

from cxlab.config import Catalog, Experiment
from cxlab.events import EXAMPLE_ROWS, EXPOSURE
from cxlab.metrics import metric_type
from cxlab.sql.reduction import (
    LOG_ORDER,
    Plan,
    asc,
    attribution_stages,
    col,
    component_condition,
    is_in,
    num,
    text,
    union_all,
    window,
)
from cxlab.summaries import LogHealth
from cxlab.summaries.scan import OTHER_EXAMPLES
from cxlab.summaries.set_aside import NO_METRIC, RANK, USED, Fates, row_ledger
from cxlab.summaries.tables import EXAMPLE_COLUMNS

# The output table: name → SQL type.
HEALTH_COLUMNS: dict[str, str] = {
    "part": "VARCHAR",  # count | event | users | example
    "key": "VARCHAR",  # a bucket, an event name or an example list
    "n": "BIGINT",
    "rn": "BIGINT",  # an example's place in its list
    "timestamp": "TIMESTAMPTZ",
    "user_id": "VARCHAR",
    "event": "VARCHAR",
    "experiment_id": "VARCHAR",
    "variant": "VARCHAR",
    "first_exposure": "TIMESTAMPTZ",
    "fate": "VARCHAR",  # an example row's bucket; a count's source (SOURCES)
}
OUTCOME_EXAMPLES = ("event_in_no_metric", "before_first_exposure", "after_window")
OUTCOME_COLUMNS = ["timestamp", "user_id", "event", "experiment_id", "first_exposure"]
BEFORE_COLUMNS = ["experiment_id", "user_id", "event", "timestamp", "first_exposure"]
OTHER_COLUMNS = ["timestamp", "user_id", "event"]
QUIET_USERS = "events_of_users_in_no_analysed_experiment"
BEFORE = "events_before_first_exposure"
# The ledger's rows by where their fate is judged: source → stage.
SOURCES = {
    "exposures": "exposure_fates",
    "unknown": "unknown",
    "outcomes": "outcome_fates",
    "others": "other_rows",
}


def _output(part: str, given: dict[str, exp.Expression]) -> exp.Select:
    """One select of the output: the given columns, the others NULL, typed."""
    values = {"part": text(part), **given}
    return exp.select(
        *[
            exp.cast(values.get(name, exp.Null()), sql_type).as_(name)
            for name, sql_type in HEALTH_COLUMNS.items()
        ]
    )


def _eq(left: exp.Expression, right: exp.Expression) -> exp.EQ:
    return exp.EQ(this=left, expression=right)


def _is_null(e: exp.Expression) -> exp.Is:
    return exp.Is(this=e, expression=exp.Null())


def _exposure_fates() -> exp.Select:
    """Configured exposure rows with their fate (as ``exposure_fates``)."""
    run = [col("experiment_id"), col("user_id"), col("in_window")]
    both = exp.NEQ(
        this=window(exp.func("MIN", col("variant")), run),
        expression=window(exp.func("MAX", col("variant")), run),
    )
    first = window(exp.func("ROW_NUMBER"), run, [asc(col("ts")), asc(col(LOG_ORDER))])
    fate = (
        exp.case()
        .when(exp.Not(this=col("in_window")), text("exposure_outside_window"))
        .when(both, text("multiple_exposures"))
        .when(_eq(first, num(1)), text(USED))
        .else_(text("repeat_exposure"))
    )
    return exp.select(
        *[col(c) for c in ("ts", "user_id", "experiment_id", "variant", LOG_ORDER)],
        fate.as_("fate"),
    ).from_("exposures")


def _unknown(ids: Sequence[str]) -> exp.Select:
    """Exposure rows of experiments without a config."""
    return (
        exp.select(
            *[col(c) for c in ("ts", "user_id", "experiment_id", "variant", LOG_ORDER)],
            text("unknown_experiment").as_("fate"),
        )
        .from_("ev")
        .where(
            exp.and_(
                _eq(col("event"), text(EXPOSURE)),
                exp.Not(this=is_in(col("experiment_id"), ids)),
            )
        )
    )


def _experiment_index(experiments: Sequence[Experiment]) -> exp.Expression:
    """The experiment's place in the list (the Polars engine's tie-break)."""
    index = exp.case()
    for i, e in enumerate(experiments):
        index = index.when(_eq(col("experiment_id", "a"), text(e.id)), num(i))
    return index


def _pairs(plan: Plan) -> exp.Select:
    """Each outcome row with each assignment of its user (none: NULLs)."""
    return (
        exp.select(
            *[col(c, "o") for c in ("ts", "user_id", "event", "value", LOG_ORDER)],
            *[col(c, "o") for c in plan.row_columns],
            *[
                col(c, "a")
                for c in (
                    "experiment_id",
                    "first_exposure",
                    "window_end",
                    "conflict_at",
                )
            ],
            _experiment_index(plan.experiments).as_("experiment_index"),
        )
        .from_(exp.to_table("outcomes").as_("o"))
        .join(
            exp.to_table("people_base").as_("a"),
            on=_eq(col("user_id", "o"), col("user_id", "a")),
            join_type="LEFT",
        )
    )


def _metric_conditions(plan: Plan, catalog: Catalog) -> tuple[exp.Case, exp.Case]:
    """Per pair: does a metric of the experiment count (``enters``) or read the row?

    As ``cxlab.summaries.set_aside._metric_conditions``: ``reads`` is ``enters``
    without the metrics' ``window_days``; a metric's extra events (a time to
    event's end) count as read and entered.
    """
    enters, reads = exp.case(), exp.case()
    for e in plan.experiments:
        metrics = [catalog[m] for m, _ in e.metric_roles]
        comps = list(
            dict.fromkeys(c for m in metrics for c in metric_type(m).components(m))
        )
        also = sorted({x for m in metrics for x in metric_type(m).log_events(m)})
        extra = [is_in(col("event"), also)] if also else []
        counted = [component_condition(c) for c in comps] + extra
        fitting = [
            component_condition(replace(c, window_days=None)) for c in comps
        ] + extra
        this = _eq(col("experiment_id"), text(e.id))
        enters = enters.when(this, exp.or_(exp.false(), *counted))
        reads = reads.when(this.copy(), exp.or_(exp.false(), *fitting))
    return enters.else_(exp.false()), reads.else_(exp.false())


def _judged(plan: Plan, catalog: Catalog) -> exp.Select:
    """Each pair's rank (:data:`RANK`): used, excluded, before, after, no metric."""
    enters, reads = _metric_conditions(plan, catalog)
    ts, first = col("ts"), col("first_exposure")
    inside = exp.and_(
        exp.GTE(this=ts, expression=first),
        exp.LT(this=ts.copy(), expression=col("window_end")),
    )
    rank = (
        exp.case()
        .when(_is_null(col("experiment_id")), num(RANK["user_never_exposed"]))
        .when(exp.Not(this=exp.Paren(this=reads)), num(NO_METRIC))
        .when(exp.and_(inside, enters, _is_null(col("conflict_at"))), num(RANK[USED]))
        .when(exp.and_(inside.copy(), enters.copy()), num(RANK["multiple_exposures"]))
        .when(
            exp.LT(this=ts.copy(), expression=first.copy()),
            num(RANK["before_first_exposure"]),
        )
        .else_(num(RANK["after_window"]))
    )
    return exp.select("*", rank.as_("rank")).from_("pairs")


def _outcome_fates() -> exp.Select:
    """Each outcome row once: its best pair, named by its fate."""
    best = window(
        exp.func("ROW_NUMBER"),
        [col(LOG_ORDER)],
        [asc(col("rank")), asc(col("experiment_index"))],
    )
    names = {**{r: k for k, r in RANK.items()}, NO_METRIC: "event_in_no_metric"}
    fate = exp.case()
    for rank, name in names.items():
        fate = fate.when(_eq(col("rank"), num(rank)), text(name))
    ranked = exp.select("*", best.as_("best")).from_("judged")
    return (
        exp.select("*", fate.as_("fate"))
        .from_(ranked.subquery("j"))
        .where(_eq(col("best"), num(1)))
    )


def _assigned() -> exp.Select:
    """The users of any assignment (excluded ones too)."""
    return exp.select(col("user_id")).distinct().from_("people_base")


def _unassigned_rows(where: exp.Expression) -> exp.Select:
    """Rows of the log (``where``) with whether their user was assigned."""
    return (
        exp.select(
            *[col(c, "e") for c in ("ts", "user_id", "event", LOG_ORDER)],
            _is_null(col("user_id", "u")).as_("unassigned"),
        )
        .from_(exp.to_table("ev").as_("e"))
        .join(
            exp.to_table("assigned").as_("u"),
            on=_eq(col("user_id", "e"), col("user_id", "u")),
            join_type="LEFT",
        )
        .where(where)
    )


def _other_rows(plan: Plan) -> exp.Select:
    """Rows of events no metric reads, by whether their user was assigned."""
    event = col("event", "e")
    unread = exp.and_(
        exp.NEQ(this=event, expression=text(EXPOSURE)),
        exp.Not(this=is_in(event.copy(), plan.outcome_events)),
    )
    fate = (
        exp.case()
        .when(col("unassigned"), text("user_never_exposed"))
        .else_(text("event_in_no_metric"))
    )
    return exp.select("*", fate.as_("fate")).from_(
        _unassigned_rows(unread).subquery("r")
    )


def _before() -> exp.Expression:
    """A kept (not excluded) assignment's outcome row before its first exposure."""
    return exp.and_(
        _is_null(col("conflict_at")),
        exp.LT(this=col("ts"), expression=col("first_exposure")),
    )


def _first_rows(
    source: exp.Select, order: Sequence[str], limit: int = EXAMPLE_ROWS
) -> exp.Select:
    """The first rows of ``source`` in ``order``, numbered ``rn`` from 1."""
    ordered = source.order_by(*[asc(col(c)) for c in order]).limit(limit)
    rn = window(exp.func("ROW_NUMBER"), [], [asc(col(c)) for c in order])
    return exp.select("*", rn.as_("rn")).from_(ordered.subquery("f"))


def _examples(key: str, rows: exp.Select, columns: Sequence[str]) -> exp.Select:
    """An example list of the output from :func:`_first_rows`."""
    given: dict[str, exp.Expression] = {"key": text(key), "rn": col("rn")}
    for c in columns:
        given["timestamp" if c == "ts" else c] = col(c)
    return _output("example", given).from_(rows.subquery("x"))


def _counts() -> list[exp.Select]:
    """Rows per fate, per event type, the users, and the set-aside counts."""
    fates = union_all(
        [
            exp.select(text(source).as_("source"), col("fate")).from_(name)
            for source, name in SOURCES.items()
        ]
    )
    rows = exp.func("COUNT", exp.Star())
    per_user_max = (
        exp.select(exp.func("MAX", col("n")).as_("n"))
        .from_(
            exp.select(col("experiment_id"), col("user_id"), rows.copy().as_("n"))
            .from_("pairs")
            .where(_before())
            .group_by(col("experiment_id"), col("user_id"))
            .subquery("b")
        )
        .group_by(col("user_id"))
    )

    def total(key: str, source: exp.Expression) -> exp.Select:
        summed = exp.func("COALESCE", exp.func("SUM", col("n")), num(0))
        return _output("count", {"key": text(key), "n": summed}).from_(source)

    return [
        _output("count", {"key": col("fate"), "n": rows.copy(), "fate": col("source")})
        .from_(fates.subquery("f"))
        .group_by(col("source"), col("fate")),
        _output("event", {"key": col("event"), "n": rows.copy()})
        .from_("ev")
        .group_by(col("event")),
        _output(
            "users", {"n": exp.Count(this=exp.Distinct(expressions=[col("user_id")]))}
        ).from_("ev"),
        total(QUIET_USERS, exp.to_table("quiet_users")),
        total(BEFORE, per_user_max.subquery("m")),
    ]


def _example_rows() -> list[exp.Select]:
    """The example lists, each in the Polars engine's order."""
    exposure = ["ts", "user_id", "experiment_id", "variant"]
    outcome = ["ts", "user_id", "event", "experiment_id", "first_exposure"]
    by_time = ["ts", "user_id", LOG_ORDER]

    def of_fate(table: str, fate: str) -> exp.Select:
        return exp.select("*").from_(table).where(_eq(col("fate"), text(fate)))

    out = [
        _examples(
            "unknown_experiment",
            _first_rows(exp.select("*").from_("unknown"), [LOG_ORDER]),
            exposure,
        )
    ]
    for fate in ("exposure_outside_window", "multiple_exposures", "repeat_exposure"):
        rows = _first_rows(of_fate("exposure_fates", fate), [LOG_ORDER])
        out.append(_examples(fate, rows, exposure))
    for fate in OUTCOME_EXAMPLES:
        rows = _first_rows(of_fate("outcome_fates", fate), by_time)
        out.append(_examples(fate, rows, outcome))
    other = _first_rows(
        exp.select("*").from_("other_rows"), [LOG_ORDER], OTHER_EXAMPLES
    )
    out.append(_examples("other", other, ["ts", "user_id", "event", "fate"]))
    before = exp.select("*").from_("pairs").where(_before())
    rows = _first_rows(before, ["ts", "experiment_id", "user_id", LOG_ORDER])
    out.append(_examples(BEFORE, rows, outcome))
    quiet = _first_rows(exp.select("*").from_("quiet_users"), ["user_id"])
    out.append(
        _output(
            "example",
            {"key": text(QUIET_USERS), "rn": col("rn"), "user_id": col("user_id")}
            | {"n": col("n")},
        ).from_(quiet.subquery("x"))
    )
    return out


def build_health(
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    table: str | exp.Expression = "events",
    log_order: exp.Expression | None = None,
    engine: str = "sql",
) -> exp.Query:
    """The log's health and its row ledger as one SQLGlot query over the log.

    Args:
        experiments: the experiments (sharing one ``columns`` mapping).
        catalog: the metric catalog.
        table: the events table's name, or an expression reading the log.
        log_order: an expression of the row's position in the log (the
            examples' order, and ties in time); unique per row.
        engine: the engine's name, for the error of an unsupported metric type.

    Returns:
        The query; its rows are the :data:`HEALTH_COLUMNS` table.

    Raises:
        UnsupportedMetricError: a metric type the SQL cannot express yet.
        ValueError: no experiments.
    """
    if not experiments:
        raise ValueError("the SQL ledger needs at least one experiment")
    plan = Plan.of(experiments, catalog, engine)
    ids = [e.id for e in experiments]
    quiet = (
        exp.select(col("user_id"), exp.func("COUNT", exp.Star()).as_("n"))
        .from_(_unassigned_rows(exp.true()).subquery("r"))
        .where(col("unassigned"))
        .group_by(col("user_id"))
    )
    stages = attribution_stages(plan, table, as_of=None, log_order=log_order)
    stages += [
        ("exposure_fates", _exposure_fates()),
        ("unknown", _unknown(ids)),
        ("pairs", _pairs(plan)),
        ("judged", _judged(plan, catalog)),
        ("outcome_fates", _outcome_fates()),
        ("assigned", _assigned()),
        ("other_rows", _other_rows(plan)),
        ("quiet_users", quiet),
    ]
    query = union_all([*_counts(), *_example_rows()])
    for name, stage in stages:
        query = query.with_(name, as_=stage)
    return query


def _frame(table: pl.DataFrame, key: str, columns: Sequence[str]) -> pl.DataFrame:
    """An example list of the output, in its order, with its columns."""
    rows = table.filter((pl.col("part") == "example") & (pl.col("key") == key))
    return rows.sort("rn").select(columns)


def log_health_of(table: pl.DataFrame, base: LogHealth) -> LogHealth:
    """The log's health and ledger from :func:`build_health`'s table.

    Args:
        table: the query's output (:data:`HEALTH_COLUMNS`).
        base: what the engine knows without it (rows, span, exposures by variant).
    """
    counted = table.filter(pl.col("part") == "count")
    counts = {
        source: {k: int(n) for k, n in rows.select("key", "n").iter_rows()}
        for (source,), rows in counted.group_by("fate")
    }
    totals = counts.get(None, {})
    unknown_rows = counts.get("unknown", {}).get("unknown_experiment", 0)
    unknown = _frame(table, "unknown_experiment", EXAMPLE_COLUMNS)
    outside = _frame(table, "exposure_outside_window", EXAMPLE_COLUMNS)
    other = _frame(table, "other", [*OTHER_COLUMNS, "fate"])
    exposures = Fates(
        counts.get("exposures", {}),
        {
            k: _frame(table, k, EXAMPLE_COLUMNS)
            for k in ("multiple_exposures", "repeat_exposure")
        },
    )
    outcomes = Fates(
        counts.get("outcomes", {}),
        {k: _frame(table, k, OUTCOME_COLUMNS) for k in OUTCOME_EXAMPLES},
    )
    others = Fates(
        counts.get("others", {}),
        {
            k: other.filter(pl.col("fate") == k).select(OTHER_COLUMNS)
            for k in ("user_never_exposed", "event_in_no_metric")
        },
    )
    ledger = row_ledger(
        base.rows,
        unknown_rows,
        exposures,
        outcomes,
        others,
        {"unknown_experiment": unknown, "exposure_outside_window": outside},
    )
    events = (
        table.filter(pl.col("part") == "event")
        .select(pl.col("key").alias("event"), pl.col("n").alias("rows"))
        .sort(["rows", "event"], descending=[True, False])
    )
    users = table.filter(pl.col("part") == "users")["n"].item()
    set_aside = {
        "exposure_rows_of_other_experiments": unknown_rows,
        "exposure_rows_outside_window": ledger.set_aside["exposure_outside_window"],
        QUIET_USERS: totals[QUIET_USERS],
        BEFORE: totals[BEFORE],
    }
    examples = {
        "exposure_rows_of_other_experiments": unknown,
        "exposure_rows_outside_window": outside,
        QUIET_USERS: _frame(table, QUIET_USERS, ["user_id", "n"]).rename({"n": "rows"}),
        BEFORE: _frame(table, BEFORE, BEFORE_COLUMNS),
    }
    return replace(
        base,
        users=int(users),
        events_by_type=events,
        set_aside=set_aside,
        set_aside_examples=examples,
        ledger=ledger,
    )
