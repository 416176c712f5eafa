"""Experiment states: not started, no exposures, as-of after the data ends."""

from __future__ import annotations

import datetime as dt

import pytest

from cxlab.events import resolve_source
from cxlab.states import experiment_state, states_summary
from cxlab.summaries import summarize

# Experiment "exp" runs 2026-10-01 .. 10-05; the log's last event is on 10-03.
ROWS = [
    {"timestamp": "2026-10-01T09:00:00", "user_id": "u1", "event": "exposure",
     "experiment_id": "exp", "variant": "control"},
    {"timestamp": "2026-10-02T09:00:00", "user_id": "u2", "event": "exposure",
     "experiment_id": "exp", "variant": "treatment"},
    {"timestamp": "2026-10-03T09:00:00", "user_id": "u2", "event": "order",
     "value": 10.0},
]  # fmt: skip


def state_of(lab, as_of: dt.date | None = None, **fields):
    exp, catalog = lab.load(lab.experiment(**fields))
    summaries = summarize(resolve_source(lab.log(ROWS)), [exp], catalog, as_of=as_of)
    return experiment_state(exp, summaries.as_of[exp.id], summaries)


def test_as_of_before_the_start_is_not_started(lab) -> None:
    state = state_of(lab, dt.date(2026, 9, 30))
    assert state.kind == "not_started"
    assert not state.has_results
    assert state.message.startswith(
        "Not started yet: exp starts on 01 Oct 2026, after the as-of date 30 Sep 2026."
    )
    assert state.label == "not started"


def test_an_experiment_nobody_was_exposed_to_has_no_exposures(lab) -> None:
    state = state_of(lab, id="ghost")
    assert state.kind == "no_exposures"
    assert not state.has_results
    assert "no user was exposed to ghost between its start on 01 Oct 2026" in (
        state.message
    )


def test_as_of_after_the_data_ends_names_the_last_day_with_data(lab) -> None:
    state = state_of(lab, dt.date(2026, 10, 20))  # the experiment ends 10-05
    assert state.kind == "after_data"
    assert state.has_results
    assert state.last_data_day == dt.date(2026, 10, 3)
    assert "the log's last event is on 03 Oct 2026" in state.message
    assert state.label == "data ends 03 Oct"


def test_as_of_after_an_experiment_that_ended_within_the_data_is_ok(lab) -> None:
    state = state_of(lab, dt.date(2026, 10, 20), end="2026-10-02")
    assert state.kind == "ok"
    assert state.message == ""


@pytest.mark.parametrize("as_of", [dt.date(2026, 10, 1), dt.date(2026, 10, 3)])
def test_a_running_experiment_within_the_data_is_ok(lab, as_of) -> None:
    assert state_of(lab, as_of).kind == "ok"


def test_without_as_of_an_end_after_the_data_is_after_the_data(lab) -> None:
    # The default as-of day is the configured end, 10-05; the data stops 10-03.
    assert state_of(lab).kind == "after_data"
    assert state_of(lab, end="2026-10-03").kind == "ok"


def test_the_summary_names_the_experiments_of_each_state(lab) -> None:
    late = state_of(lab, dt.date(2026, 10, 20))
    ghost = state_of(lab, dt.date(2026, 10, 20), id="ghost")
    early = state_of(lab, dt.date(2026, 9, 1), id="early")
    assert states_summary([late, ghost, early]) == [
        "Not started yet as of the as-of date, so no numbers: early.",
        "No exposures in the log, so no numbers: ghost.",
        "The as-of date is after the data ends on 03 Oct 2026: the numbers of exp "
        "stand at that day, the last with data.",
    ]
    assert states_summary([state_of(lab, dt.date(2026, 10, 3))]) == []
