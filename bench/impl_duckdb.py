"""The daily reduction written plainly in DuckDB SQL: what an analyst would use instead.

    python bench/impl_duckdb.py --events bench/data/1000000/events.parquet \
        --experiments bench/data/1000000/experiments --out /tmp/duckdb.parquet

Produces, for every experiment, metric, variant and day from the start to the end,
the cumulative sufficient statistics n, sum_x, sum_xx, sum_y, sum_yy, sum_xy as they
stood at the end of that day (the same table as ``Summaries.daily``; for NPS, n
responders, sum_x promoters and sum_y detractors), following
CONTRACT §1: first in-window exposure, outcome events from the first exposure to the
end of the window, users seen in a second variant excluded from that day on.

The SQL does what an expert would: one row per (experiment, user) before the join,
per-user daily aggregates, a running value per user (window functions), its daily
changes summed per (variant, day) and a cumulative sum over days.

Also home of :func:`read_configs`, the plain-YAML reading of the experiment and
metric configs that the non-CX-Lab implementations share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

TYPES = ("proportion", "mean", "nps", "ratio")


@dataclass(frozen=True)
class Comp:
    """A per-user aggregate of one event: count, sum or last value."""

    event: str
    aggregate: str  # count | sum | last

    @property
    def name(self) -> str:
        return f"{self.aggregate}_{self.event}"


@dataclass(frozen=True)
class Metric:
    id: str
    type: str
    x: Comp
    y: Comp | None = None


@dataclass(frozen=True)
class Exp:
    id: str
    start: dt.date
    end: dt.date
    variants: tuple[str, ...]
    metrics: tuple[str, ...]


def _metric(metric_id: str, spec: dict) -> Metric:
    unsupported = {"filter", "window_days"} & set(spec)
    if unsupported or spec["type"] not in TYPES:
        raise NotImplementedError(f"{metric_id}: {spec} is beyond this benchmark")
    if spec["type"] == "ratio":
        num, den = spec["numerator"], spec["denominator"]
        return Metric(
            metric_id,
            "ratio",
            Comp(num["event"], num.get("aggregate", "count")),
            Comp(den["event"], den.get("aggregate", "count")),
        )
    aggregate = {"proportion": "count", "nps": "last"}.get(
        spec["type"], spec.get("aggregate", "sum")
    )
    if aggregate not in ("count", "sum", "last"):
        raise NotImplementedError(f"{metric_id}: aggregate {aggregate}")
    return Metric(metric_id, spec["type"], Comp(spec["event"], aggregate))


def read_configs(folder: Path) -> tuple[list[Exp], dict[str, Metric]]:
    """Experiments (with an ``end``) and the metrics they use, from plain YAML."""
    catalog = yaml.safe_load((folder / "metrics.yaml").read_text())
    metrics = {m: _metric(m, spec) for m, spec in catalog.items()}
    exps = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "metrics.yaml":
            continue
        cfg = yaml.safe_load(path.read_text())
        used = [cfg["primary_metric"]]
        for key in ("secondary_metrics", "guardrail_metrics"):
            used += [m for m in cfg.get(key, []) if m not in used]
        exps.append(
            Exp(
                cfg["id"],
                cfg["start"],
                cfg["end"],
                tuple(v["id"] for v in cfg["variants"]),
                tuple(used),
            )
        )
    return exps, metrics


def components(exps: list[Exp], metrics: dict[str, Metric]) -> list[Comp]:
    """The distinct per-user aggregates the experiments' metrics need."""
    used = dict.fromkeys(m for e in exps for m in e.metrics)
    comps = [c for m in used for c in (metrics[m].x, metrics[m].y) if c is not None]
    return list(dict.fromkeys(comps))


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _values(rows: list[tuple], names: list[str]) -> str:
    body = ",\n        ".join("(" + ", ".join(row) + ")" for row in rows)
    return f"SELECT * FROM (VALUES\n        {body}\n    ) AS t({', '.join(names)})"


def _user_value(metric: Metric) -> tuple[str, str, str]:
    """SQL for (x, y, in_population) from the running component columns."""
    x = metric.x.name
    if metric.type == "proportion":
        return f"CASE WHEN {x} > 0 THEN 1.0 ELSE 0.0 END", "0.0", "1.0"
    if metric.type == "nps":  # x promoter (9-10), y detractor (0-6): counts
        return (
            f"CASE WHEN {x} >= 9 THEN 1.0 ELSE 0.0 END",
            f"CASE WHEN {x} < 7 THEN 1.0 ELSE 0.0 END",
            f"CASE WHEN {x} IS NULL THEN 0.0 ELSE 1.0 END",
        )
    if metric.type == "ratio":
        assert metric.y is not None
        return f"coalesce({x}, 0.0)", f"coalesce({metric.y.name}, 0.0)", "1.0"
    return f"coalesce({x}, 0.0)", "0.0", "1.0"


def build_sql(
    source: tuple[str, str], exps: list[Exp], metrics: dict[str, Metric]
) -> str:
    """The whole reduction as one SQL statement over ``source``.

    ``source`` is (table function, expression of the row's position in the log).
    """
    source, row = source
    comps = components(exps, metrics)
    events = sorted({c.event for c in comps})
    windows = _values(
        [
            (
                _sql_text(e.id),
                f"TIMESTAMPTZ '{e.start} 00:00:00+00'",
                f"TIMESTAMPTZ '{e.end + dt.timedelta(days=1)} 00:00:00+00'",
            )
            for e in exps
        ],
        ["experiment_id", "w_start", "w_end"],
    )
    grid = _values(
        [
            (
                _sql_text(e.id),
                _sql_text(m),
                _sql_text(v),
                f"DATE '{e.start}'",
                f"DATE '{e.end}'",
                _sql_text(metrics[m].type),
            )
            for e in exps
            for m in e.metrics
            for v in e.variants
        ],
        ["experiment_id", "metric", "variant", "first_day", "last_day", "type"],
    )
    agg = {
        "count": "count(*) FILTER (WHERE o.event = {e})",
        "sum": "sum(o.value) FILTER (WHERE o.event = {e})",
        # the last value in time; on equal times the later row of the log
        "last": "arg_max(o.value, (o.ts, o.rn)) FILTER (WHERE o.event = {e} "
        "AND o.value IS NOT NULL)",
    }
    per_day = ",\n          ".join(
        agg[c.aggregate].format(e=_sql_text(c.event)) + f" AS {c.name}" for c in comps
    )
    running = ",\n          ".join(
        f"last_value({c.name} IGNORE NULLS) OVER w AS {c.name}"
        if c.aggregate == "last"
        else f"sum(coalesce({c.name}, 0)) OVER w AS {c.name}"
        for c in comps
    )
    used = list(dict.fromkeys(m for e in exps for m in e.metrics))
    active = "(conflict_day IS NULL OR day < conflict_day)"
    values, lags, sums, long = [], [], [], []
    for i, m in enumerate(used):
        for k, expr in zip("xyp", _user_value(metrics[m]), strict=True):
            values.append(
                f"CAST(CASE WHEN {active} THEN {expr} ELSE 0 END AS DOUBLE) AS {k}{i}"
            )
            lags.append(f"lag({k}{i}, 1, 0) OVER u AS {k}{i}_prev")
        x, y, pop = f"x{i}", f"y{i}", f"p{i}"
        products = [
            f"sum({x} * {x} - {x}_prev * {x}_prev) AS sum_xx{i}",
            f"sum({y} * {y} - {y}_prev * {y}_prev) AS sum_yy{i}",
            f"sum({x} * {y} - {x}_prev * {y}_prev) AS sum_xy{i}",
        ]
        if metrics[m].type == "nps":  # counts only: no squares or products
            products = [f"0.0 AS sum_{c}{i}" for c in ("xx", "yy", "xy")]
        sums += [
            f"sum({pop} - {pop}_prev) AS d_pop{i}",
            f"sum({x} - {x}_prev) AS sum_x{i}",
            f"sum({y} - {y}_prev) AS sum_y{i}",
            *products,
        ]
        stats = ["d_pop", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]
        long.append(
            f"SELECT experiment_id, {_sql_text(m)} AS metric, variant, day, "
            + ", ".join(f"{c}{i} AS {c}" for c in stats)
            + " FROM daily_wide"
        )
    sep = ",\n           "
    union_all = "\n    UNION ALL "
    return f"""
WITH windows AS (
    {windows}
),
grid_rows AS (
    {grid}
),
ev AS (
    SELECT "timestamp" AS ts, CAST(user_id AS VARCHAR) AS user_id, event,
           experiment_id, variant, CAST(value AS DOUBLE) AS value, {row} AS rn
    FROM {source}
),
per_variant AS (
    SELECT ev.experiment_id, ev.user_id, ev.variant, min(ev.ts) AS since
    FROM ev JOIN windows w USING (experiment_id)
    WHERE ev.event = 'exposure' AND ev.ts >= w.w_start AND ev.ts < w.w_end
    GROUP BY ALL
),
users AS (
    SELECT row_number() OVER () AS uk, u.*, w.w_end,
           CAST(u.first_exposure AS DATE) AS exposure_day,
           CAST(u.conflict_at AS DATE) AS conflict_day
    FROM (
        SELECT experiment_id, user_id,
               arg_min(variant, since) AS variant,
               min(since) AS first_exposure,
               list_sort(list(since))[2] AS conflict_at
        FROM per_variant GROUP BY ALL
    ) u JOIN windows w USING (experiment_id)
),
per_user_day AS (
    SELECT u.uk, CAST(o.ts AS DATE) AS day,
          {per_day}
    FROM ev o JOIN users u USING (user_id)
    WHERE o.event IN ({", ".join(_sql_text(e) for e in events)})
      AND o.ts >= u.first_exposure AND o.ts < u.w_end
    GROUP BY ALL
    UNION ALL BY NAME
    SELECT uk, conflict_day AS day FROM users WHERE conflict_day IS NOT NULL
),
user_days AS (
    SELECT d.uk, d.day, u.experiment_id, u.variant, u.conflict_day,
          {running}
    FROM per_user_day d JOIN users u USING (uk)
    WINDOW w AS (PARTITION BY d.uk ORDER BY d.day
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
metric_values AS (
    SELECT uk, experiment_id, variant, day,
           {sep.join(values)}
    FROM user_days
),
daily_wide AS (
    -- each user's change since their previous row, summed per variant and day
    SELECT experiment_id, variant, day,
           {sep.join(sums)}
    FROM (
        SELECT *,
               {sep.join(lags)}
        FROM metric_values
        WINDOW u AS (PARTITION BY uk ORDER BY day)
    )
    GROUP BY ALL
),
changes AS (
    {union_all.join(long)}
),
flow AS (
    SELECT experiment_id, variant, day, sum(d) AS d_users FROM (
        SELECT experiment_id, variant, exposure_day AS day, 1 AS d FROM users
        UNION ALL
        SELECT experiment_id, variant, conflict_day, -1 FROM users
        WHERE conflict_day IS NOT NULL
    ) GROUP BY ALL
),
grid AS (
    SELECT t.experiment_id, t.metric, t.variant, t.type,
           CAST(unnest(generate_series(t.first_day, t.last_day, INTERVAL 1 DAY))
                AS DATE) AS day
    FROM grid_rows t
)
SELECT g.experiment_id, g.metric, g.variant, g.day,
       CAST(round(CASE WHEN g.type = 'nps' THEN sum(coalesce(c.d_pop, 0)) OVER s
                  ELSE sum(coalesce(f.d_users, 0)) OVER s END) AS BIGINT) AS n,
       sum(coalesce(c.sum_x, 0)) OVER s AS sum_x,
       sum(coalesce(c.sum_xx, 0)) OVER s AS sum_xx,
       sum(coalesce(c.sum_y, 0)) OVER s AS sum_y,
       sum(coalesce(c.sum_yy, 0)) OVER s AS sum_yy,
       sum(coalesce(c.sum_xy, 0)) OVER s AS sum_xy
FROM grid g
LEFT JOIN changes c USING (experiment_id, metric, variant, day)
LEFT JOIN flow f USING (experiment_id, variant, day)
WINDOW s AS (PARTITION BY g.experiment_id, g.metric, g.variant ORDER BY g.day
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY ALL
"""


def source_of(events: Path) -> tuple[str, str]:
    """DuckDB table function reading the log (types auto-detected), row number."""
    if events.suffix.lower() == ".csv":
        # read_csv has no file_row_number; the scan keeps the file's order
        return f"read_csv({_sql_text(str(events))})", "row_number() OVER ()"
    path = _sql_text(str(events))
    return f"read_parquet({path}, file_row_number = true)", "file_row_number"


def reduce(events: Path, experiments: Path, *, threads: int | None = None):
    """The daily table as a pyarrow Table."""
    import duckdb

    exps, metrics = read_configs(experiments)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {threads}")
    return con.sql(build_sql(source_of(events), exps, metrics)).to_arrow_table()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--experiments", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--print-sql", action="store_true")
    args = parser.parse_args()
    if args.print_sql:
        exps, metrics = read_configs(args.experiments)
        print(build_sql(source_of(args.events), exps, metrics))
        return
    start = time.perf_counter()
    table = reduce(args.events, args.experiments)
    if args.out:
        import pyarrow.parquet as pq

        pq.write_table(table, args.out)
    print(f"duckdb: {table.num_rows} rows in {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
