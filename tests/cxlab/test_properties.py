"""Properties of the attribution and summaries on small generated logs (STYLE habit 13).

Logs have up to six users and 25 rows spread over 2026-09-29 .. 2026-10-08 (the
experiment runs 2026-10-01 .. 2026-10-05), every row at a distinct minute so that
"first" and "last" are never ties. Rows are exposures (control / treatment), orders,
contacts and NPS answers, each with a platform.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxlab.config import load_catalog, load_experiment
from cxlab.events import resolve_source
from cxlab.summaries import summarize

LOG_START = dt.datetime(2026, 9, 29, tzinfo=dt.UTC)
LOG_MINUTES = 10 * 24 * 60
WINDOW = (
    dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 6, tzinfo=dt.UTC),
)
METRICS = [
    "revenue",
    "max_order",
    "last_order",
    "nps",
    "contacts_per_order",
    "conversion_2d",
]
KEYS = ["experiment_id", "metric", "variant", "day"]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def logs(draw) -> list[dict]:
    n = draw(st.integers(1, 25))
    minutes = draw(
        st.lists(st.integers(0, LOG_MINUTES - 1), min_size=n, max_size=n, unique=True)
    )
    rows = []
    for minute in minutes:
        kind = draw(
            st.sampled_from(
                ["exposure", "exposure", "order", "contact", "nps_response"]
            )
        )
        value = None
        if kind == "order":
            value = float(draw(st.integers(1, 50)))
        elif kind == "nps_response":
            value = float(draw(st.integers(0, 10)))
        rows.append(
            {
                "timestamp": stamp(LOG_START + dt.timedelta(minutes=minute)),
                "user_id": draw(st.sampled_from(["u0", "u1", "u2", "u3", "u4", "u5"])),
                "event": kind,
                "experiment_id": "exp" if kind == "exposure" else None,
                "variant": draw(st.sampled_from(["control", "treatment"]))
                if kind == "exposure"
                else None,
                "value": value,
                "platform": draw(st.sampled_from(["ios", "web"])),
            }
        )
    return rows


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def summaries_of(make_lab, rows: list[dict], cuped_days: int = 0):
    with tempfile.TemporaryDirectory() as folder:
        lab = make_lab(Path(folder))
        path = lab.experiment(
            secondary_metrics=METRICS, dimensions=["platform"], cuped_days=cuped_days
        )
        catalog = load_catalog(lab.catalog_path)
        exp = load_experiment(path, catalog)
        return summarize(resolve_source(lab.log(rows)), [exp], catalog)


def comparable(s) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return (
        s.daily.sort(KEYS),
        s.by_dimension.sort("metric", "variant", "segment"),
        s.exposures.sort("variant", "day"),
    )


def assert_same(left, right) -> None:
    for a, b in zip(comparable(left), comparable(right), strict=True):
        assert a.equals(b), f"\n{a}\n!=\n{b}"


def first_exposures(rows: list[dict]) -> dict[str, dt.datetime]:
    """Each user's first exposure inside the experiment's start..end (plain Python)."""
    first: dict[str, dt.datetime] = {}
    for row in rows:
        moment = parse(row["timestamp"])
        if row["event"] == "exposure" and WINDOW[0] <= moment < WINDOW[1]:
            user = row["user_id"]
            first[user] = min(first.get(user, moment), moment)
    return first


@SETTINGS
@given(rows=logs(), data=st.data())
def test_permuting_rows_changes_nothing(make_lab, rows, data) -> None:
    shuffled = data.draw(st.permutations(rows))
    assert_same(summaries_of(make_lab, rows), summaries_of(make_lab, shuffled))


@SETTINGS
@given(rows=logs(), data=st.data())
def test_adding_events_before_first_exposure_changes_nothing(
    make_lab, rows, data
) -> None:
    taken = {row["timestamp"] for row in rows}
    extra = []
    for user, first in first_exposures(rows).items():
        back = data.draw(st.integers(1, 3 * 24 * 60), label=f"minutes before {user}")
        moment = stamp(first - dt.timedelta(minutes=back))
        if moment in taken:
            continue
        taken.add(moment)
        kind = data.draw(st.sampled_from(["order", "contact", "nps_response"]))
        extra.append(
            {
                "timestamp": moment,
                "user_id": user,
                "event": kind,
                "experiment_id": None,
                "variant": None,
                "value": None if kind == "contact" else 9.0,
                "platform": "web",
            }
        )
    assert_same(summaries_of(make_lab, rows), summaries_of(make_lab, rows + extra))


@SETTINGS
@given(rows=logs())
def test_analysed_users_plus_multiple_exposures_are_the_exposed_users(
    make_lab, rows
) -> None:
    s = summaries_of(make_lab, rows)
    end = s.daily.filter(
        (pl.col("metric") == "revenue") & (pl.col("day") == dt.date(2026, 10, 5))
    )
    analysed = end["n"].sum()
    assert analysed + s.health["exp"].multiple_exposures == len(first_exposures(rows))
    # and exactly the users seen in one variant only are analysed (plain Python)
    variants: dict[str, set[str]] = {}
    for row in rows:
        if (
            row["event"] == "exposure"
            and WINDOW[0] <= parse(row["timestamp"]) < WINDOW[1]
        ):
            variants.setdefault(row["user_id"], set()).add(row["variant"])
    assert analysed == sum(len(v) == 1 for v in variants.values())
