"""An earlier as-of day's portfolio row and results history, as ``ui.cache`` gives
them: read off the whole history when that gives the day's numbers, else analysed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from cxlab.api import results_for
from cxlab.engine_choice import EngineChoice
from cxlab.report import experiment_to_dict
from cxlab.ui import cache


def test_a_day_before_a_reason_was_first_met_is_analysed_not_read_off(
    lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Contact reasons: "late" from 10-01, "billing" from 10-03 (whole: both).

    Read off the whole history, 10-01 and 10-02 would carry a "billing" row and
    correct "late" for two reasons; analysed as of those days they have one.
    """
    e = lab.event
    lab.experiment(secondary_metrics=["contact_reasons"])
    log = lab.log(
        [
            e("2026-10-01T09:00Z", "a", "exposure", "control"),
            e("2026-10-01T09:00Z", "b", "exposure", "treatment"),
            e("2026-10-01T10:00Z", "a", "contact", reason="late"),
            e("2026-10-02T10:00Z", "b", "contact", reason="late"),
            e("2026-10-03T10:00Z", "b", "contact", reason="billing"),
            e("2026-10-05T10:00Z", "a", "contact", reason="late"),
        ]
    )
    monkeypatch.setenv(cache.STORE_ENV, str(tmp_path / "store"))
    monkeypatch.setattr(cache, "_HAD", set())
    ws = cache.workspace_of(str(log), EngineChoice(), lab.experiments_dir, None)
    whole = cache.load_history(ws, "exp")  # as cxlab app has it before it answers
    exp, catalog = lab.load()
    reasons = set()
    for day in (r.as_of for r in whole):
        at = replace(ws, as_of=day)
        cut = cache.all_summaries(at)["exp"]
        analysed = results_for(exp, catalog, cut, history=True)
        shown = cache.load_history(at, "exp")
        assert [experiment_to_dict(r) for r in shown] == [
            experiment_to_dict(r) for r in analysed
        ], day
        (row,) = cache.load_portfolio(at)
        assert repr(row) == repr(
            results_for(exp, catalog, cut, history=False, details=False)[0]
        ), day
        reasons.add(tuple(r.category for r in row.results if r.category))
    assert reasons == {("late",), ("billing", "late")}
    assert [r.as_of for r in whole] == [
        dt.date(2026, 10, 1) + dt.timedelta(days=k) for k in range(5)
    ]
