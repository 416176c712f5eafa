"""bench/app_rerender.py measures re-renders that do not rescan the log.

One page change (the results page's decision-method switch), one timed run after
the warm-up, in an AppTest session of app.py on the bundled sample log, served as
``cxlab app`` serves it: the scan is done before the first load. No timing
is asserted: speed is measured by ``python bench/app_rerender.py``, never in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import app_rerender  # noqa: E402


def test_the_server_scans_once_and_a_method_switch_never_rescans() -> None:
    report = app_rerender.measure(runs=1, only=["results: decision method"])
    assert report.server == "cxlab app"
    assert report.prepared is not None
    assert report.prepared.summarize >= 1  # the counter sees the server's scan
    assert report.prepared.reads >= 1
    # The session reads what the server prepared, as under `cxlab app`.
    assert (report.first_load.summarize, report.first_load.reads) == (0, 0)
    assert not report.first_load.problems
    changes = [r for r in report.rows if r.change.startswith("decision method")]
    assert len(changes) == 1
    assert len(changes[0].times_ms) == 1
    for row in report.rows:  # opening the results page, then the switch
        assert (row.summarize, row.reads) == (0, 0), row
        assert not row.problems, row
