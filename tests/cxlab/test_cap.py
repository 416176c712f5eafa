"""``cap: {percentile: p}`` on mean metrics (CONTRACT §2): winsorized per-user values.

The hand-built log (experiment ``exp``, 2026-10-01 .. 2026-10-05): ten users exposed
on 10-01, each ordering once on 10-02. Control a0..a4 order 10, 20, 30, 40 and an
outlier 1000; treatment b0..b4 order 5, 15, 25, 35, 45. With percentile 0.9 the
pooled cap is numpy's linear percentile of the ten values: position 9 · 0.9 = 8.1
between 45 and 1000, so 45 + 0.1 · 955 = 140.5, and a4 counts 140.5.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import textwrap

import numpy as np
import polars as pl
import pytest

from cxlab.config import ConfigError, load_catalog
from cxlab.events import resolve_source
from cxlab.sql.duckdb_engine import summarize_duckdb
from cxlab.stats.aggregates import SampleStats
from cxlab.stats.fixed import fixed_test
from cxlab.summaries import at_day, summarize
from tests.conftest import cli, last_row

CAPPED = """\
capped_revenue:
  type: mean
  event: order
  cap: {percentile: 0.9}
  direction: increase
"""
CONTROL = [10.0, 20.0, 30.0, 40.0, 1000.0]
TREATMENT = [5.0, 15.0, 25.0, 35.0, 45.0]


@pytest.fixture
def capped_lab(lab):
    lab.catalog_path.write_text(lab.catalog_path.read_text() + CAPPED)
    e = lab.event
    rows = []
    for arm, prefix, values in (
        ("control", "a", CONTROL),
        ("treatment", "b", TREATMENT),
    ):
        for i, value in enumerate(values):
            rows.append(e("2026-10-01T09:00Z", f"{prefix}{i}", "exposure", arm))
            rows.append(e("2026-10-02T09:00Z", f"{prefix}{i}", "order", value=value))
    lab.rows = rows
    return lab


def capped(values: list[float], cap: float) -> np.ndarray:
    return np.minimum(np.array(values), cap)


def test_cap_is_the_pooled_percentile_of_the_users_values(capped_lab) -> None:
    cap = np.quantile(CONTROL + TREATMENT, 0.9)  # numpy's default: linear
    assert cap == pytest.approx(140.5)
    s = capped_lab.summarize(capped_lab.rows, secondary_metrics=["capped_revenue"])
    for variant, values in (("control", CONTROL), ("treatment", TREATMENT)):
        row = last_row(s, "capped_revenue", variant)
        x = capped(values, cap)
        assert row["n"] == 5
        assert row["sum_x"] == pytest.approx(x.sum())
        assert row["sum_xx"] == pytest.approx((x * x).sum())
        stats = SampleStats(row["n"], row["sum_x"], row["sum_xx"])
        assert stats.var == pytest.approx(x.var(ddof=1))
    # before the orders every value is 0, so is the cap; from 10-02 it is 140.5
    assert s.caps["day"].to_list() == [dt.date(2026, 10, 1), dt.date(2026, 10, 2)]
    assert s.caps["cap"].to_list() == pytest.approx([0.0, 140.5])


def test_capped_mean_reaches_the_json_with_its_cap(capped_lab) -> None:
    path = capped_lab.log(capped_lab.rows)
    capped_lab.experiment(secondary_metrics=["capped_revenue"])
    out = cli(
        "analyze",
        "exp",
        "--events",
        str(path),
        "--experiments",
        str(capped_lab.experiments_dir),
    )
    (row,) = [r for r in json.loads(out)["results"] if r["metric"] == "capped_revenue"]
    c, t = capped(CONTROL, 140.5), capped(TREATMENT, 140.5)
    assert row["cap"] == {"percentile": 0.9, "value": pytest.approx(140.5)}
    assert row["control"] == {"n": 5, "value": pytest.approx(c.mean())}  # 48.1
    assert row["treatment"] == {"n": 5, "value": pytest.approx(t.mean())}  # 25
    expected = fixed_test(
        SampleStats(5, c.sum(), (c * c).sum()),
        SampleStats(5, t.sum(), (t * t).sum()),
        alpha=row["fixed"]["alpha"],
    )
    assert row["fixed"]["p_value"] == pytest.approx(expected.p_value)
    assert row["fixed"]["abs_ci"] == pytest.approx(list(expected.abs_ci))
    conversion = next(r for r in json.loads(out)["results"] if r is not row)
    assert "cap" not in conversion  # only capped metrics carry the key


def test_any_earlier_day_of_a_capped_mean_equals_a_fresh_scan(lab) -> None:
    """at_day(full, d) == summarize(as_of=d): the cap is each day's own."""
    lab.catalog_path.write_text(lab.catalog_path.read_text() + CAPPED)
    rng = random.Random(7)
    e = lab.event
    rows = []
    for u in range(60):
        user = f"u{u:02d}"
        first = dt.datetime(2026, 10, 1, 8) + dt.timedelta(days=rng.randint(0, 4))
        arm = rng.choice(["control", "treatment"])
        platform = rng.choice(["ios", "web"])
        stamp = f"{first:%Y-%m-%dT%H:%M}Z"
        rows.append(e(stamp, user, "exposure", arm, platform=platform))
        if rng.random() < 0.1:  # meets the other arm later: retires that day
            later = first + dt.timedelta(days=rng.randint(0, 2), hours=1)
            other = "treatment" if arm == "control" else "control"
            rows.append(e(f"{later:%Y-%m-%dT%H:%M}Z", user, "exposure", other))
        for _ in range(rng.randint(0, 4)):
            when = first + dt.timedelta(hours=rng.randint(-30, 120))
            value = rng.choice([rng.randint(1, 90), rng.randint(500, 5000)])
            rows.append(e(f"{when:%Y-%m-%dT%H:%M}Z", user, "order", value=value))
    fields = {
        "secondary_metrics": ["capped_revenue"],
        "dimensions": ["platform"],
        "cuped_days": 2,
    }
    full = lab.summarize(rows, **fields)
    _, catalog = lab.load()
    for day in [dt.date(2026, 10, 1) + dt.timedelta(days=k) for k in range(5)]:
        fresh = lab.summarize(rows, as_of=day, **fields)
        cut = at_day(full, day, catalog)
        assert_frames_close(cut.daily, fresh.daily)
        assert_frames_close(cut.by_dimension, fresh.by_dimension)
        assert cut.caps.equals(fresh.caps), day
    assert full.caps.height >= 5  # a cap on every day: the comparison is not vacuous
    assert full.health["exp"].multiple_exposures > 0


def assert_frames_close(left: pl.DataFrame, right: pl.DataFrame) -> None:
    """Equal frames, float sums to 1e-9 (capped values are fractions)."""
    from polars.testing import assert_frame_equal

    assert_frame_equal(left, right, rel_tol=1e-9, abs_tol=1e-9)


def write_catalog(tmp_path, text: str):
    path = tmp_path / "metrics.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("cap", "message"),
    [
        ("{percentile: 0.4}", r":5: 'cap' needs 'percentile', a number in \(0.5, 1\)"),
        ("{percentile: 1}", r":5: 'cap' needs 'percentile'"),
        ("{percentile: high}", r":5: 'percentile' must be a number"),
        ("{}", r":5: 'cap' needs 'percentile'"),
        ("{percentile: 0.99, at: 2}", r":5: unknown key 'at' in metric 'r'.cap"),
        ("0.99", r":5: metric 'r'.cap must be a mapping"),
    ],
)
def test_a_bad_cap_is_an_error_with_file_and_line(tmp_path, cap, message) -> None:
    path = write_catalog(
        tmp_path,
        f"""\
        r:
          type: mean
          event: order
          direction: increase
          cap: {cap}
        """,
    )
    with pytest.raises(ConfigError, match=r"metrics\.yaml" + message):
        load_catalog(path)


@pytest.mark.parametrize("metric_type", ["proportion", "nps"])
def test_cap_on_another_type_is_an_error_with_file_and_line(
    tmp_path, metric_type: str
) -> None:
    path = write_catalog(
        tmp_path,
        f"""\
        r:
          type: {metric_type}
          event: order
          cap: {{percentile: 0.99}}
          direction: increase
        """,
    )
    with pytest.raises(ConfigError, match=r"metrics\.yaml:4: unknown key 'cap'"):
        load_catalog(path)


def test_a_good_cap_is_its_percentile(tmp_path) -> None:
    path = write_catalog(tmp_path, CAPPED)
    assert load_catalog(path)["capped_revenue"].cap == 0.9


def test_the_duckdb_engine_caps_as_the_polars_engine(capped_lab) -> None:
    exp, catalog = capped_lab.load(
        capped_lab.experiment(secondary_metrics=["capped_revenue"], cuped_days=1)
    )
    source = resolve_source(capped_lab.log(capped_lab.rows, "events.parquet"))
    polars_summaries = summarize(source, [exp], catalog)
    duckdb_summaries = summarize_duckdb(source, [exp], catalog)
    # The module docstring's cap: 45 + 0.1 · 955 = 140.5 from 10-02 on.
    for summaries in (polars_summaries, duckdb_summaries):
        caps = summaries.caps.filter(pl.col("day") == dt.date(2026, 10, 2))
        assert caps["cap"].to_list() == [pytest.approx(140.5, rel=1e-12)]
        row = last_row(summaries, "capped_revenue", "control")
        assert row["sum_x"] == pytest.approx(sum(capped(CONTROL, 140.5)), rel=1e-12)
    assert polars_summaries.caps.equals(duckdb_summaries.caps)


def test_the_csv_and_the_page_text_carry_the_cap(capped_lab) -> None:
    import csv
    import io

    from cxlab import charts
    from cxlab.analysis import analyze

    path = capped_lab.log(capped_lab.rows)
    capped_lab.experiment(secondary_metrics=["capped_revenue"])
    args = ["analyze", "exp", "--events", str(path), "--format", "csv"]
    out = cli(*args, "--experiments", str(capped_lab.experiments_dir))
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["capped_revenue"]["cap_percentile"] == "0.9"
    assert float(rows["capped_revenue"]["cap_value"]) == pytest.approx(140.5)
    assert rows["conversion"]["cap_value"] == ""  # no cap: an empty cell
    s = capped_lab.summarize(capped_lab.rows, secondary_metrics=["capped_revenue"])
    exp, catalog = capped_lab.load()
    result = analyze(exp, catalog, s)
    assert charts.cap_text(result.result("capped_revenue"), result.as_of) == (
        "Each user's value is capped at 140.5: the 90th percentile of all analysed "
        "users' values, arms pooled, at the end of 05 Oct 2026 (winsorization)."
    )
    assert charts.cap_text(result.result("conversion"), result.as_of) is None
