"""The customer's voice through the engine: contact reasons and time to resolution.

Experiment ``exp`` (conftest) runs 2026-10-01 .. 2026-10-05. The small log below is
worked out by hand in the comments; times to resolution are in minutes, the
log's last event is 2026-10-05T23:00 (user c's order), so a contact still open
on the last day is censored then.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from scipy.stats import chi2_contingency

from cxlab.analysis import day_of_history, history_until, with_details
from cxlab.api import results_for
from cxlab.metrics import TYPES
from cxlab.report import csv_rows, experiment_to_dict, to_table
from cxlab.summaries import at_day
from cxlab.summaries.voice import LATE, OPEN, RESOLVED

FIELDS = {"secondary_metrics": ["contact_reasons", "time_to_resolution"]}


@pytest.fixture
def voice_log(lab) -> list[dict]:
    e = lab.event
    return [
        # a (control): "late" on 10-01 (resolved 2 h later) and 10-02, billing 10-03
        e("2026-10-01T09:00Z", "a", "exposure", "control"),
        e("2026-10-01T10:00Z", "a", "contact", reason="late"),
        e("2026-10-01T12:00Z", "a", "contact_resolved"),
        e("2026-10-02T10:00Z", "a", "contact", reason="late"),
        e("2026-10-03T10:00Z", "a", "contact", reason="billing"),
        # b (control): a contact without a reason on 10-04 22:00, never resolved
        e("2026-10-01T09:00Z", "b", "exposure", "control"),
        e("2026-10-04T22:00Z", "b", "contact"),
        # c (treatment): billing on 10-02 09:00, resolved 10-03 09:30 (24.5 h)
        e("2026-10-01T09:00Z", "c", "exposure", "treatment"),
        e("2026-10-02T09:00Z", "c", "contact", reason="billing"),
        e("2026-10-03T09:30Z", "c", "contact_resolved"),
        e("2026-10-05T23:00Z", "c", "order", value=3),
        # d (treatment): resolved BEFORE its contact (does not count), contact
        # 10-01 08:00 resolved 10-04 20:00 (84 h: past the 72 h horizon)
        e("2026-10-01T07:00Z", "d", "exposure", "treatment"),
        e("2026-10-01T07:30Z", "d", "contact_resolved"),
        e("2026-10-01T08:00Z", "d", "contact", reason="late"),
        e("2026-10-04T20:00Z", "d", "contact_resolved"),
    ]


def test_registry_has_one_entry_per_new_type() -> None:
    categorical, time_to_event = TYPES["categorical"], TYPES["time_to_event"]
    assert categorical.config_keys == {"event", "category"}
    assert categorical.detail == "categories"
    assert time_to_event.config_keys == {"start_event", "end_event", "horizon_hours"}
    assert (time_to_event.detail, time_to_event.population) == (
        "survival",
        "responders",
    )


def test_category_sums_and_first_categories_by_day(lab, voice_log) -> None:
    s = lab.summarize(voice_log, **FIELDS)
    rows = {
        (r["variant"], r["category"], r["day"].isoformat()): (
            r["sum_x"],
            r["sum_xx"],
            r["first"],
        )
        for r in s.categories.to_dicts()
    }
    assert rows == {
        # a: late x 1 -> 2 (x² 1 -> 4: +3 on 10-02), first category late
        ("control", "late", "2026-10-01"): (1.0, 1.0, 1.0),
        ("control", "late", "2026-10-02"): (1.0, 3.0, 0.0),
        ("control", "billing", "2026-10-03"): (1.0, 1.0, 0.0),
        # b: a null reason counts as "(none)"
        ("control", "(none)", "2026-10-04"): (1.0, 1.0, 1.0),
        ("treatment", "billing", "2026-10-02"): (1.0, 1.0, 1.0),
        ("treatment", "late", "2026-10-01"): (1.0, 1.0, 1.0),
    }


def test_survival_states_change_until_resolved_or_at_the_horizon(
    lab, voice_log
) -> None:
    s = lab.summarize(voice_log, **FIELDS)
    rows = sorted(
        (r["variant"], r["day"].isoformat(), r["minutes"], r["kind"], r["users"])
        for r in s.survival.to_dicts()
    )
    assert rows == sorted(
        [
            ("control", "2026-10-01", 120, RESOLVED, 1),  # a: 2 h
            ("control", "2026-10-04", 120, OPEN, 1),  # b: 22:00 -> midnight
            ("control", "2026-10-05", 120, OPEN, -1),
            ("control", "2026-10-05", 1500, OPEN, 1),  # b: 22:00 -> 23:00 next day
            ("treatment", "2026-10-02", 900, OPEN, 1),  # c: 09:00 -> midnight
            ("treatment", "2026-10-03", 900, OPEN, -1),
            ("treatment", "2026-10-03", 1470, RESOLVED, 1),  # c: 24.5 h
            ("treatment", "2026-10-01", 960, OPEN, 1),  # d: 08:00 -> midnight, 16 h
            ("treatment", "2026-10-02", 960, OPEN, -1),
            ("treatment", "2026-10-02", 2400, OPEN, 1),  # 40 h
            ("treatment", "2026-10-03", 2400, OPEN, -1),
            ("treatment", "2026-10-03", 3840, OPEN, 1),  # 64 h
            ("treatment", "2026-10-04", 3840, OPEN, -1),
            ("treatment", "2026-10-04", 4320, LATE, 1),  # 84 h: censored at 72 h
        ]
    )


def test_results_carry_categories_compositions_rmst_and_logrank(lab, voice_log) -> None:
    s = lab.summarize(voice_log, **FIELDS)
    exp, catalog = lab.load()
    payload = experiment_to_dict(results_for(exp, catalog, s, history=False)[0])
    reasons = {
        r["category"]: r for r in payload["results"] if r["metric"] == "contact_reasons"
    }
    assert sorted(reasons) == ["(none)", "billing", "late"]
    # control: a (late 2, billing 1), b ((none) 1): rates per exposed user (n = 2)
    assert reasons["late"]["control"] == {"n": 2, "value": 1.0}
    assert reasons["late"]["treatment"] == {"n": 2, "value": 0.5}
    assert reasons["billing"]["treatment"]["value"] == 0.5
    # first categories: control late 1, (none) 1; treatment billing 1, late 1
    (composition,) = payload["compositions"]
    chi2, p, df, _ = chi2_contingency([[1, 0, 1], [0, 1, 1]], correction=False)
    assert composition == {
        "metric": "contact_reasons",
        "variant": "treatment",
        "chi2": pytest.approx(chi2),
        "df": df,
        "p_value": pytest.approx(p),
    }
    (resolution,) = [
        r for r in payload["results"] if r["metric"] == "time_to_resolution"
    ]
    # control: event at 2 h (n 2), b censored at 25 h: RMST = 2 + 0.5 * 70 = 37
    assert resolution["control"] == {"n": 2, "value": 37.0, "censored": 1}
    # treatment: event at 24.5 h (n 2), d censored at 72 h: 24.5 + 0.5 * 47.5
    assert resolution["treatment"] == {"n": 2, "value": 48.25, "censored": 0}
    assert "logrank_p_value" in resolution["fixed"]


def test_an_earlier_as_of_day_equals_a_fresh_scan(lab, voice_log) -> None:
    full = lab.summarize(voice_log, **FIELDS)
    _, catalog = lab.load()
    for k in range(6):
        day = dt.date(2026, 10, 1) + dt.timedelta(days=k)
        fresh = lab.summarize(voice_log, as_of=day, **FIELDS)
        cut = at_day(full, day, catalog)
        assert cut.categories.equals(fresh.categories), day
        assert cut.survival.equals(fresh.survival), day


def test_an_as_of_day_reads_off_the_whole_history_once_every_reason_is_met(
    lab, voice_log
) -> None:
    """Reasons met later make an earlier day's rows and correction family differ.

    As of 10-01 only "late" was met, as of 10-02 and 10-03 "late" and "billing";
    the whole history (to 10-05) also has "(none)", met on 10-04. So its days
    before 10-04 are not what an analysis as of those days gives, and the as-of
    day's history and row must be analysed then (cxlab.ui.cache does).
    """
    full = lab.summarize(voice_log, **FIELDS)
    exp, catalog = lab.load()
    whole = results_for(exp, catalog, full, history=True)
    read_off = []
    for day in (r.as_of for r in whole):
        cut = at_day(full, day, catalog)
        direct = [
            experiment_to_dict(r) for r in results_for(exp, catalog, cut, history=True)
        ]
        last = results_for(exp, catalog, cut, history=False)[0]
        until = [experiment_to_dict(r) for r in history_until(whole, last)]
        row = day_of_history(whole, catalog, cut)
        if row is None:
            assert until != direct or day == whole[0].as_of, day
            continue
        read_off.append(day)
        assert until == direct, day
        assert repr(with_details(row, catalog, cut)) == repr(last), day
    assert read_off == [dt.date(2026, 10, 4), dt.date(2026, 10, 5)]


def test_a_contact_open_at_the_as_of_day_is_censored_there(lab, voice_log) -> None:
    """As of 10-02: c (contact 10-02 09:00) is open, censored at 15 h; d at 40 h."""
    s = lab.summarize(voice_log, as_of=dt.date(2026, 10, 2), **FIELDS)
    exp, catalog = lab.load()
    result = results_for(exp, catalog, s, history=False)[0]
    row = result.result("time_to_resolution")
    km = row.treatment.stats.km
    assert list(km.time) == [15.0, 40.0]
    assert (list(km.events), list(km.censored)) == ([0, 0], [1, 1])
    assert row.treatment.stats.censored == 2
    assert row.treatment.value == 72.0  # nobody resolved yet: S = 1 up to τ


def test_a_user_who_meets_the_other_arm_leaves_both_tables(lab, voice_log) -> None:
    e = lab.event
    log = [*voice_log, e("2026-10-03T12:00Z", "a", "exposure", "treatment")]
    s = lab.summarize(log, **FIELDS)
    late = s.categories.filter(
        (pl.col("variant") == "control") & (pl.col("category") == "late")
    )
    assert late["sum_x"].sum() == 0
    assert late["first"].sum() == 0
    a_state = s.survival.filter(
        (pl.col("variant") == "control") & (pl.col("minutes") == 120)
    )
    # a's resolved state enters on 10-01 and leaves on 10-03; b's open one stays
    assert a_state.filter(pl.col("kind") == RESOLVED)["users"].sum() == 0


def test_csv_and_table_name_each_category(lab, voice_log) -> None:
    s = lab.summarize(voice_log, **FIELDS)
    exp, catalog = lab.load()
    payload = experiment_to_dict(results_for(exp, catalog, s, history=False)[0])
    rows = csv_rows([payload])
    reasons = [r["category"] for r in rows if r["metric"] == "contact_reasons"]
    assert sorted(reasons) == ["(none)", "billing", "late"]
    assert all(r["category"] is None for r in rows if r["metric"] != "contact_reasons")
    assert "contact_reasons: billing" in to_table([payload])
