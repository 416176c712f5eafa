"""The NPS tab shows the customers' own words as plain text, never as markup."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from cxlab.ui import cache

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "results.py")
SCRIPT = "<script>alert('x')</script> late"
BOLD = "**bold** claim"


def test_comments_render_literally_in_dataframe_cells(lab, timeout: int) -> None:
    e = lab.event
    rows = []
    for i in range(40):
        arm = ("control", "treatment")[i % 2]
        rows.append(e("2026-10-01T08:00:00Z", f"u{i}", "exposure", arm))
        score, text = (2, SCRIPT) if i % 4 < 2 else (10, BOLD)
        answer = e("2026-10-02T08:00:00Z", f"u{i}", "nps_response", value=score)
        rows.append({**answer, "comment": text})
    lab.experiment(primary_metric="nps")
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.session_state["experiments_dir"] = str(lab.experiments_dir)
    at.session_state[cache.EVENTS_KEY] = str(lab.log(rows, "events.parquet"))
    at.query_params["experiment"] = "exp"
    at.run()
    at.session_state["results_view"] = "NPS answers"  # the tab a reader clicks
    at.run()
    assert not at.exception
    said = [d.value for d in at.dataframe if "said by" in d.value.columns]
    assert len(said) == 2  # one table per arm
    for frame in said:
        assert set(frame["comment"]) == {SCRIPT, BOLD}
    assert {t.value for t in at.text} >= {"control", "treatment"}
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("<script>" in text or "**bold**" in text for text in shown)
