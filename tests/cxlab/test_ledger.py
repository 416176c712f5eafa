"""The ledger (CONTRACT §1): every row of the log in exactly one bucket.

Hand-built logs where each row's fate is written beside it; the experiments are
``exp`` (2026-10-01 .. 10-05, conversion on orders) and ``exp2`` (10-01 .. 10-10,
``conversion_2d``: orders within 2 days of exposure, and ``phone_contact_rate``:
contacts with ``channel: phone``).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from cxlab.config import load_catalog, load_experiments
from cxlab.events import resolve_source
from cxlab.summaries import at_day, summarize
from tests.conftest import cli
from tests.cxlab.test_properties import logs


def ledger_of(lab, rows, **exp_fields):
    """Write the log and both experiments; the ledger of summarising them all."""
    lab.experiment(**exp_fields)
    lab.experiment(
        id="exp2",
        end="2026-10-10",
        primary_metric="conversion_2d",
        secondary_metrics=["phone_contact_rate"],
    )
    catalog = load_catalog(lab.catalog_path)
    experiments = load_experiments(lab.experiments_dir, catalog)
    source = resolve_source(lab.log(rows))
    return summarize(source, experiments, catalog).log.ledger


def event(lab, *args, channel: str | None = None, **kwargs) -> dict:
    return lab.event(*args, channel=channel, **kwargs)


def test_each_row_lands_in_its_one_bucket_with_precedence(lab) -> None:
    e = lambda *a, **k: event(lab, *a, **k)  # noqa: E731
    rows = [
        e("2026-10-01T09:00:00Z", "u1", "exposure", "control"),  # used
        e("2026-10-02T09:00:00Z", "u1", "exposure", "control"),  # repeat_exposure
        e("2026-10-02T10:00:00Z", "u1", "page_view"),  # event_in_no_metric
        # exp reads no contact, u1 is not in exp2: event_in_no_metric
        e("2026-10-02T11:00:00Z", "u1", "contact", channel="phone"),
        e("2026-10-07T09:00:00Z", "u1", "order", value=1),  # after_window (exp end)
        e("2026-10-01T09:00:00Z", "u2", "exposure", "treatment"),  # multiple_exp.
        e("2026-10-03T09:00:00Z", "u2", "exposure", "control"),  # multiple_exp.
        e("2026-10-02T09:00:00Z", "u2", "order", value=1),  # multiple (would count)
        e("2026-09-29T09:00:00Z", "u2", "order", value=1),  # before_first_exposure
        e("2026-10-01T09:00:00Z", "u3", "exposure", "control", experiment_id="exp2"),
        e("2026-10-02T09:00:00Z", "u3", "order", value=1),  # used (in 2 days)
        e("2026-10-04T09:00:00Z", "u3", "order", value=1),  # after_window (2 days)
        # exp2 reads phone contacts only: event_in_no_metric
        e("2026-10-04T10:00:00Z", "u3", "contact", channel="email"),
        e("2026-10-01T09:00:00Z", "u4", "exposure", "control"),  # used
        e("2026-10-03T09:00:00Z", "u4", "exposure", "treatment", experiment_id="exp2"),
        # used by exp; before u4's exposure to exp2: used
        e("2026-10-02T09:00:00Z", "u4", "order", value=1),
        e("2026-10-01T09:00:00Z", "u5", "exposure", "control"),  # used
        e("2026-10-06T09:00:00Z", "u5", "exposure", "control", experiment_id="exp2"),
        # after exp's end and before exp2's exposure: before_first_exposure wins
        e("2026-10-06T05:00:00Z", "u5", "order", value=1),
        e("2026-10-01T09:00:00Z", "g", "exposure", "x", experiment_id="ghost"),
        e("2026-10-09T09:00:00Z", "u6", "exposure", "control"),  # outside window
        e("2026-10-09T10:00:00Z", "u6", "order", value=1),  # user_never_exposed
    ]
    ledger = ledger_of(lab, rows)

    assert ledger.rows == 22
    assert ledger.used == 8
    assert ledger.set_aside == {
        "unknown_experiment": 1,
        "exposure_outside_window": 1,
        "multiple_exposures": 3,
        "repeat_exposure": 1,
        "user_never_exposed": 1,
        "event_in_no_metric": 3,
        "before_first_exposure": 2,
        "after_window": 2,
    }
    assert ledger.used + sum(ledger.set_aside.values()) == ledger.rows
    # examples name the rows: u5's order is the second before-exposure row
    before = ledger.examples["before_first_exposure"]
    assert before["user_id"].to_list() == ["u2", "u5"]
    assert ledger.examples["repeat_exposure"]["user_id"].to_list() == ["u1"]


def test_an_exposure_before_the_window_does_not_take_the_users_first_place(
    lab,
) -> None:
    e = lambda *a, **k: event(lab, *a, **k)  # noqa: E731
    rows = [
        e("2026-09-30T09:00:00Z", "u1", "exposure", "control"),  # outside window
        e("2026-10-01T09:00:00Z", "u1", "exposure", "control"),  # used
        e("2026-10-01T09:00:00Z", "u1", "exposure", "control"),  # repeat (same time)
    ]
    ledger = ledger_of(lab, rows)
    assert ledger.used == 1
    assert ledger.set_aside["exposure_outside_window"] == 1
    assert ledger.set_aside["repeat_exposure"] == 1


def test_check_json_reports_the_ledger_and_text_shows_it_adding_up(lab) -> None:
    e = lambda *a, **k: event(lab, *a, **k)  # noqa: E731
    lab.experiment()
    path = lab.log(
        [
            e("2026-10-01T09:00:00Z", "a", "exposure", "control"),  # used
            e("2026-10-02T09:00:00Z", "a", "order", value=5),  # used
            e("2026-10-02T10:00:00Z", "z\x1b[2J", "page_view"),  # user_never_exposed
        ]
    )
    args = ["check", "--events", str(path), "--experiments", str(lab.experiments_dir)]
    report = json.loads(cli(*args, "--format", "json"))
    assert report["ledger"]["rows"] == 3
    assert report["ledger"]["used"] == 2
    assert report["ledger"]["set_aside"]["user_never_exposed"] == 1
    assert sum(report["ledger"]["set_aside"].values()) == 1
    assert "set_aside" in report  # the earlier fields stay

    text = cli(*args)
    section = text.split("Ledger:")[1]  # the one account of set-aside rows
    assert "Rows set aside" not in text
    assert "user_never_exposed" in section
    assert "total" in section
    assert "\x1b" not in text
    assert "z\\x1b[2J" in text


def test_an_as_of_cut_carries_no_ledger(lab) -> None:
    lab.experiment()
    catalog = load_catalog(lab.catalog_path)
    experiments = load_experiments(lab.experiments_dir, catalog)
    path = lab.log([lab.event("2026-10-01T09:00:00Z", "a", "exposure", "control")])
    full = summarize(resolve_source(path), experiments, catalog)
    assert full.log.ledger is not None
    cut = summarize(
        resolve_source(path), experiments, catalog, as_of=dt.date(2026, 10, 2)
    )
    assert cut.log.ledger is None
    assert at_day(full, dt.date(2026, 10, 2), catalog).log.ledger is None


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows=logs())
def test_the_ledger_closes_on_any_small_log(make_lab, rows) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lab = make_lab(Path(tmp))
        lab.experiment(secondary_metrics=["revenue", "nps", "contacts_per_order"])
        lab.experiment(id="exp2", primary_metric="conversion_2d")
        catalog = load_catalog(lab.catalog_path)
        experiments = load_experiments(lab.experiments_dir, catalog)
        ledger = summarize(
            resolve_source(lab.log(rows)), experiments, catalog
        ).log.ledger
        assert ledger.rows == len(rows)
        assert ledger.used + sum(ledger.set_aside.values()) == ledger.rows
        assert min(ledger.set_aside.values()) >= 0
