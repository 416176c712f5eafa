"""The SQL reduction equals the Polars engine: sufficient statistics and JSON.

The sample (cxlab/sample.py, small) with the bundled experiments, and random small
logs (hypothesis) with every supported metric type, a dimension, CUPED, a metric
window, multiple exposures and events before, at and after the window. The SQL of
the other dialects is rendered and parsed back; the printed DuckDB SQL is run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxlab.config import (
    BayesPrior,
    Experiment,
    load_catalog,
    load_experiment,
    load_experiments,
)
from cxlab.errors import InputError
from cxlab.events import resolve_source
from cxlab.sample import write_sample
from cxlab.sql.duckdb_engine import summarize_duckdb
from cxlab.sql.engines import summarize_with
from cxlab.sql.reduction import (
    ADDED_COLUMNS,
    DIALECTS,
    OUTPUT_COLUMNS,
    build_reduction,
    parse,
    render,
)
from cxlab.sql.tables import check_changes, summaries_from_changes
from cxlab.sql.values import UnsupportedMetricError, sql_cuped, sql_values
from cxlab.summaries import READ_FIELDS, as_reduced, at_day, summarize
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
REL = 1e-12
LOG_START = dt.datetime(2026, 9, 28, tzinfo=dt.UTC)
METRICS = [
    "revenue",
    "orders",
    "max_order",
    "last_order",
    "nps",
    "contacts_per_order",
    "phone_contact_rate",
    "conversion_2d",
    "contact_reasons",
    "time_to_resolution",
]


def assert_equal_summaries(left, right) -> None:
    """Equal keys, counts exactly, sums to 1e-12 relative; equal health."""
    for name in (
        "daily",
        "by_dimension",
        "exposures",
        "categories",
        "caps",
        "survival",
    ):
        a, b = getattr(left, name), getattr(right, name)
        assert a.schema == b.schema, name
        keys = [c for c in a.columns if a.schema[c] in (pl.String, pl.Date)]
        a, b = a.sort(keys), b.sort(keys)
        floats = [c for c in a.columns if a.schema[c] == pl.Float64]
        assert a.drop(floats).equals(b.drop(floats)), f"{name}\n{a}\n!=\n{b}"
        for c in floats:
            scale = a[c].abs().max() or 1.0
            assert ((a[c] - b[c]).abs().max() or 0.0) <= REL * scale, (name, c)
    assert left.health == right.health
    assert left.as_of == right.as_of


def sql_ready(experiments, catalog) -> list:
    """The experiments the SQL reduction can run (its refusals are tested below)."""
    ready = []
    for e in experiments:
        try:
            build_reduction([e], catalog)
        except UnsupportedMetricError:
            continue
        ready.append(e)
    return ready


CAPPED = """\
capped_revenue:
  type: mean
  event: order
  cap: {percentile: 0.8}
  direction: increase
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "events.parquet"
    return write_sample(path, seed=7, n_users=3_000)


@pytest.fixture(scope="module")
def ready_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled configs holding only the SQL-ready experiments."""
    folder = tmp_path_factory.mktemp("configs")
    catalog = load_catalog(EXPERIMENTS / "metrics.yaml")
    shutil.copy(EXPERIMENTS / "metrics.yaml", folder / "metrics.yaml")
    for e in sql_ready(load_experiments(EXPERIMENTS, catalog), catalog):
        shutil.copy(e.source, folder / Path(e.source).name)
    return folder


def test_the_sql_runs_every_bundled_experiment() -> None:
    catalog = load_catalog(EXPERIMENTS / "metrics.yaml")
    experiments = load_experiments(EXPERIMENTS, catalog)
    assert len(experiments) == 8
    assert sql_ready(experiments, catalog) == experiments


def test_duckdb_engine_equals_polars_on_the_sample(sample: Path) -> None:
    catalog = load_catalog(EXPERIMENTS / "metrics.yaml")
    experiments = sql_ready(load_experiments(EXPERIMENTS, catalog), catalog)
    source = resolve_source(sample)
    polars_summaries = summarize(source, experiments, catalog, log_health=False)
    duckdb_summaries = summarize_duckdb(source, experiments, catalog)
    assert polars_summaries.daily["n"].max() > 100
    assert polars_summaries.categories["first"].sum() > 100
    assert polars_summaries.survival["users"].abs().sum() > 100
    assert_equal_summaries(polars_summaries, duckdb_summaries)


# A value other than the default for every field the reduction does not read.
UNREAD = {
    "name": "Renamed",
    "hypothesis": "Another hypothesis",
    "owner": "someone-else",
    "alpha": 0.01,
    "decision": "bayesian",
    "status": "shipped",
    "decision_note": "Shipped after review.",
    "planned_users": 123_457,
    "sequential_tuning": 777,
    "sequential_method": "group",
    "bayes_prior": BayesPrior(0.01, 0.2),
    "correction": "bh",
    "guardrail_margin": 0.02,
    "tags": ("renamed",),
    "content_hash": "0123456789abcdef",
}


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_the_engines_read_only_the_fields_a_reduced_experiment_keeps(
    sample: Path, engine: str
) -> None:
    """So a config edit of any other field (a name, alpha, the decision) can share
    the scan: the summaries are the same with every such field changed."""
    names = {f.name for f in dataclasses.fields(Experiment)}
    assert names - READ_FIELDS == set(UNREAD)  # a new field: say whether it is read
    catalog = load_catalog(EXPERIMENTS / "metrics.yaml")
    experiments = load_experiments(EXPERIMENTS, catalog)
    edited = [dataclasses.replace(e, **UNREAD) for e in experiments]
    reduced = [as_reduced(e) for e in edited]
    assert reduced == [as_reduced(e) for e in experiments]
    source = resolve_source(sample)
    assert_equal_summaries(
        summarize_with(engine, source, edited, catalog),
        summarize_with(engine, source, reduced, catalog),
    )


def test_duckdb_summaries_cut_at_an_earlier_day_equal_a_fresh_scan(sample) -> None:
    catalog = load_catalog(EXPERIMENTS / "metrics.yaml")
    experiments = sql_ready(load_experiments(EXPERIMENTS, catalog), catalog)
    source = resolve_source(sample)
    full = summarize_duckdb(source, experiments, catalog)
    polars_full = summarize(source, experiments, catalog, log_health=False)
    day = dt.date(2026, 10, 12)
    assert_equal_summaries(
        at_day(full, day, catalog),
        summarize_duckdb(source, experiments, catalog, as_of=day),
    )
    assert_equal_summaries(
        at_day(full, day, catalog), at_day(polars_full, day, catalog)
    )


def test_analyze_json_is_byte_identical_across_engines(
    sample: Path, ready_folder: Path
) -> None:
    args = [
        "analyze",
        "--all",
        "--events",
        str(sample),
        "--experiments",
        str(ready_folder),
    ]
    polars_json = cli(*args, "--engine", "polars")
    assert '"results"' in polars_json
    assert cli(*args, "--engine", "duckdb") == polars_json


def test_analyze_json_with_a_capped_mean_is_byte_identical_across_engines(
    sample: Path, tmp_path: Path
) -> None:
    text = (EXPERIMENTS / "metrics.yaml").read_text()
    (tmp_path / "metrics.yaml").write_text(
        text
        + CAPPED.replace("capped_revenue", "capped_revenue_99").replace("0.8", "0.99")
    )
    config = yaml.safe_load((EXPERIMENTS / "proactive-shipping-email.yaml").read_text())
    config["secondary_metrics"].append("capped_revenue_99")
    config["cuped_days"] = 7
    (tmp_path / "proactive-shipping-email.yaml").write_text(yaml.safe_dump(config))
    args = ["analyze", "--all", "--events", str(sample), "--experiments", str(tmp_path)]
    polars_json = cli(*args, "--engine", "polars")
    assert '"capped_revenue_99"' in polars_json
    assert cli(*args, "--engine", "duckdb") == polars_json


def test_printed_sql_analysed_from_its_table_gives_the_same_json(
    sample: Path, tmp_path: Path, ready_folder: Path
) -> None:
    experiment = "returns-portal-chat"
    sql = cli("sql", experiment, "--experiments", str(ready_folder), "--table", "ev")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{sample}')")
    table = tmp_path / "summaries.csv"
    con.sql(sql.rstrip().rstrip(";")).pl().write_csv(table)
    common = [experiment, "--experiments", str(ready_folder)]
    from_events = cli("analyze", *common, "--events", str(sample))
    from_table = cli("analyze", *common, "--summaries", str(table))
    strip = [line for line in from_events.splitlines() if "log_fingerprint" not in line]
    assert [
        line for line in from_table.splitlines() if "log_fingerprint" not in line
    ] == strip


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rendered_sql_parses_back_in_its_dialect(dialect: str) -> None:
    catalog = load_catalog(EXPERIMENTS / "metrics.yaml")
    experiments = sql_ready(load_experiments(EXPERIMENTS, catalog), catalog)
    sql = render(build_reduction(experiments, catalog), dialect)
    tree = parse(sql, dialect)
    # Snowflake's DATEDIFF and TIMESTAMPDIFF are synonyms; SQLGlot reads the one back
    # as the other.
    synonym = "DATEDIFF(" if dialect == "snowflake" else "TIMESTAMPDIFF("
    assert render(tree, dialect) == sql.replace("TIMESTAMPDIFF(", synonym)
    assert sql.count("UNION ALL") > 10


def test_unsupported_metric_type_is_named() -> None:
    with pytest.raises(UnsupportedMetricError, match="funnel metrics are not"):
        sql_values("funnel", "duckdb")
    with pytest.raises(UnsupportedMetricError, match="CUPED on categorical metrics"):
        sql_cuped("categorical", "duckdb")


def test_summaries_table_of_the_first_format_version_reads_added_columns_as_null():
    first_version = [c for c in OUTPUT_COLUMNS if c not in ADDED_COLUMNS]
    table = pl.DataFrame(
        {c: ["2026-10-01" if c == "day" else None] for c in first_version}
    )
    checked = check_changes(table.with_columns(pl.lit("arm").alias("kind")), "t.csv")
    assert checked["category"].to_list() == [None]
    assert checked["first_category"].dtype == pl.Float64


def test_summaries_table_without_a_column_is_refused() -> None:
    columns = {c: [None] for c in OUTPUT_COLUMNS if c != "sum_x"}
    with pytest.raises(
        InputError, match=r"t\.csv: not a summaries table: no column sum_x "
    ):
        check_changes(pl.DataFrame(columns), "t.csv")


@st.composite
def logs(draw) -> list[dict]:
    """Up to 30 rows of six users over 2026-09-28 .. 2026-10-08 (exp: 10-01..10-05)."""
    n = draw(st.integers(1, 30))
    minutes = draw(
        st.lists(st.integers(0, 11 * 24 * 60), min_size=n, max_size=n, unique=True)
    )
    rows = []
    for minute in minutes:
        kind = draw(
            st.sampled_from(
                [
                    "exposure",
                    "exposure",
                    "order",
                    "contact",
                    "contact_resolved",
                    "nps_response",
                ]
            )
        )
        value = None
        if kind == "order":
            value = float(draw(st.integers(-5, 50)))
        elif kind == "nps_response":
            value = float(draw(st.integers(0, 10)))
        moment = LOG_START + dt.timedelta(minutes=minute)
        rows.append(
            {
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "user_id": draw(st.sampled_from(["u0", "u1", "u2", "u3", "u4", "u5"])),
                "event": kind,
                "experiment_id": "exp" if kind == "exposure" else None,
                "variant": draw(st.sampled_from(["control", "treatment"]))
                if kind == "exposure"
                else None,
                "value": value,
                "platform": draw(st.sampled_from(["ios", "web", None])),
                "channel": draw(st.sampled_from(["phone", "chat"])),
                "reason": draw(st.sampled_from(["late", "damaged", None])),
            }
        )
    return rows


@settings(
    max_examples=12,
    derandomize=True,  # the same examples every run
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=logs(),
    cuped_days=st.sampled_from([0, 2]),
    as_of=st.sampled_from([None, dt.date(2026, 10, 3)]),
    fmt=st.sampled_from(["events.csv", "events.parquet"]),
)
def test_duckdb_equals_polars_on_random_logs(
    make_lab, rows, cuped_days, as_of, fmt
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        lab = make_lab(Path(folder))
        lab.catalog_path.write_text(lab.catalog_path.read_text() + CAPPED)
        path = lab.experiment(
            secondary_metrics=[*METRICS, "capped_revenue"],
            dimensions=["platform"],
            cuped_days=cuped_days,
        )
        catalog = load_catalog(lab.catalog_path)
        exp = load_experiment(path, catalog)
        source = resolve_source(lab.log(rows, fmt))
        polars_summaries = summarize(source, [exp], catalog, as_of=as_of)
        duckdb_summaries = summarize_duckdb(source, [exp], catalog, as_of=as_of)
        assert_equal_summaries(polars_summaries, duckdb_summaries)
        earlier = dt.date(2026, 10, 2)
        assert_equal_summaries(
            at_day(polars_summaries, earlier, catalog),
            at_day(duckdb_summaries, earlier, catalog),
        )
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        reader = "read_csv" if fmt.endswith(".csv") else "read_parquet"
        con.execute(
            f"CREATE VIEW events AS SELECT * FROM {reader}('{source.files[0]}')"
        )
        printed = render(build_reduction([exp], catalog, as_of=as_of), "duckdb")
        table = check_changes(con.sql(printed).pl(), "printed")
        from_table = summaries_from_changes(table, [exp], catalog, as_of=as_of)
        assert_equal_summaries(polars_summaries, from_table)


# Found by the random test above (a random seed, 2026-12-02): with CUPED, DuckDB
# counted the pre-period covariate twice (pre_x 2 where Polars had 1): the entry
# sums went both through the flow and the metric's changes. Kept as a regression.
KNOWN_CUPED_CASE = Path(__file__).with_name("sql_cuped_case.json")


def test_duckdb_cuped_pre_period_equals_polars_on_a_found_log(make_lab, tmp_path):
    rows = json.loads(KNOWN_CUPED_CASE.read_text())
    lab = make_lab(tmp_path)
    path = lab.experiment(
        secondary_metrics=[m for m in METRICS if m != "contact_reasons"],
        dimensions=["platform"],
        cuped_days=2,
    )
    catalog = load_catalog(lab.catalog_path)
    exp = load_experiment(path, catalog)
    source = resolve_source(lab.log(rows, "events.parquet"))
    as_of = dt.date(2026, 10, 3)
    assert_equal_summaries(
        summarize(source, [exp], catalog, as_of=as_of),
        summarize_duckdb(source, [exp], catalog, as_of=as_of),
    )


def test_category_changes_by_hand_in_both_engines(lab) -> None:
    """u1 (control) contacts twice for 'late', once 'damaged', then meets treatment."""
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "u1", "exposure", "control"),
        e("2026-10-01T11:00:00Z", "u2", "exposure", "treatment"),
        e("2026-10-02T09:00:00Z", "u1", "contact", reason="late"),
        e("2026-10-02T11:00:00Z", "u1", "contact", reason="late"),
        e("2026-10-02T12:00:00Z", "u2", "contact", reason=None),
        e("2026-10-03T08:00:00Z", "u1", "contact", reason="damaged"),
        e("2026-10-03T09:00:00Z", "u2", "contact", reason="late"),
        e("2026-10-04T12:00:00Z", "u1", "exposure", "treatment"),
    ]
    exp, catalog = lab.load(lab.experiment(secondary_metrics=["contact_reasons"]))
    source = resolve_source(lab.log(rows, "events.parquet"))
    # (variant, category, day, Σx, Σx², first): u1's 'late' grows 0 → 2 (x² 0 → 4)
    # on 10-02; on 10-04 (their conflict) all of u1 is taken back.
    expected = [
        ("control", "damaged", dt.date(2026, 10, 3), 1.0, 1.0, 0.0),
        ("control", "damaged", dt.date(2026, 10, 4), -1.0, -1.0, 0.0),
        ("control", "late", dt.date(2026, 10, 2), 2.0, 4.0, 1.0),
        ("control", "late", dt.date(2026, 10, 4), -2.0, -4.0, -1.0),
        ("treatment", "(none)", dt.date(2026, 10, 2), 1.0, 1.0, 1.0),
        ("treatment", "late", dt.date(2026, 10, 3), 1.0, 1.0, 0.0),
    ]
    for engine in (summarize, summarize_duckdb):
        table = engine(source, [exp], catalog).categories
        got = table.sort("variant", "category", "day").select(
            "variant", "category", "day", "sum_x", "sum_xx", "first"
        )
        assert got.rows() == expected, engine.__name__


def test_ratio_and_nps_cuped_sums_by_hand_in_both_engines(lab, row_of) -> None:
    """u1 answers 9 and contacts once, orders twice in the 2 days before exposure."""
    e = lab.event
    rows = [
        e("2026-09-30T08:00:00Z", "u1", "nps_response", value=9),
        e("2026-09-30T09:00:00Z", "u1", "contact"),
        e("2026-09-30T10:00:00Z", "u1", "order", value=5.0),
        e("2026-09-30T11:00:00Z", "u1", "order", value=7.0),
        e("2026-10-01T10:00:00Z", "u1", "exposure", "control"),
        e("2026-10-02T08:00:00Z", "u1", "nps_response", value=3),
        e("2026-10-02T09:00:00Z", "u1", "contact"),
        e("2026-10-03T09:00:00Z", "u1", "order", value=4.0),
        e("2026-10-01T12:00:00Z", "u2", "exposure", "treatment"),
    ]
    path = lab.experiment(secondary_metrics=["nps", "contacts_per_order"], cuped_days=2)
    exp, catalog = lab.load(path)
    source = resolve_source(lab.log(rows, "events.parquet"))
    # NPS: x₀ = +100 (promoter before), s = −100 (detractor after).
    nps = {"n": 1, "pre_x": 100.0, "pre_xx": 1e4, "pre_xy": -1e4}
    # Ratio: x₀ = 1 contact, y₀ = 2 orders before; x = 1, y = 1 after.
    ratio = {
        **{"n": 1, "pre_x": 1.0, "pre_xx": 1.0, "pre_y": 2.0, "pre_yy": 4.0},
        **{"pre_x0y0": 2.0, "pre_xy": 1.0, "pre_xy0": 2.0, "pre_yx0": 1.0},
        "pre_yy0": 2.0,
    }
    for engine in (summarize, summarize_duckdb):
        summaries = engine(source, [exp], catalog)
        for metric, expected in (("nps", nps), ("contacts_per_order", ratio)):
            row = row_of(summaries, metric, "control")
            assert {k: row[k] for k in expected} == expected, (engine, metric)


def test_survival_changes_by_hand_in_both_engines(lab) -> None:
    """u1 is resolved in 90 minutes; u2's contact is open at the log's last event."""
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "u1", "exposure", "control"),
        e("2026-10-01T11:00:00Z", "u2", "exposure", "treatment"),
        e("2026-10-01T12:00:00Z", "u1", "contact"),
        e("2026-10-01T13:30:00Z", "u1", "contact_resolved"),
        e("2026-10-02T10:00:00Z", "u2", "contact"),
        e("2026-10-02T22:00:00Z", "u3", "page_view"),
    ]
    exp, catalog = lab.load(lab.experiment(secondary_metrics=["time_to_resolution"]))
    source = resolve_source(lab.log(rows, "events.parquet"))
    # (variant, day, minutes, kind, users): u1 resolved (1) at 90 minutes on 10-01;
    # u2 open (0) on 10-02, censored at 22:00, 720 minutes after the contact.
    expected = [
        ("control", dt.date(2026, 10, 1), 90, 1, 1),
        ("treatment", dt.date(2026, 10, 2), 720, 0, 1),
    ]
    for engine in (summarize, summarize_duckdb):
        table = engine(source, [exp], catalog).survival
        got = table.sort("variant", "day").select(
            "variant", "day", "minutes", "kind", "users"
        )
        assert got.rows() == expected, engine.__name__
