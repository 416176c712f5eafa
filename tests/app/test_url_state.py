"""A results link carries the whole view, and the URL follows the widgets."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import app_rerender  # noqa: E402

THREE_ARMS = "free-shipping-threshold"
LINK = {
    "experiment": THREE_ARMS,
    "method": "bayesian",
    "scale": "abs",
    "metric": "conversion",
    "variant": "threshold_35",
    "as_of": "2026-10-20",
}


def run(at: AppTest) -> AppTest:
    """Run app.py as the server does (app.py's navigation on every rerun)."""
    with app_rerender.server_like_navigation():
        at.run()
    assert not at.exception
    return at


def open_link(query: dict[str, str], timeout: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page("pages/results.py")
    return run(at)


def param(at: AppTest, key: str) -> str | None:
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


@pytest.fixture(scope="module")
def linked(timeout: int, sample_log: Path) -> AppTest:
    return open_link(LINK, timeout)


def test_a_link_with_every_parameter_opens_that_view(linked: AppTest) -> None:
    assert linked.selectbox(key="results_experiment").value == THREE_ARMS
    assert linked.segmented_control(key=f"results_method_{THREE_ARMS}").value == (
        "bayesian"
    )
    assert linked.segmented_control(key="results_scale").value == "abs"
    assert linked.selectbox(key=f"results_metric_{THREE_ARMS}").value == "conversion"
    assert linked.selectbox(key=f"results_variant_{THREE_ARMS}").value == (
        "threshold_35"
    )
    assert linked.sidebar.date_input[0].value == dt.date(2026, 10, 20)
    assert any("as of 20 Oct 2026" in m.value for m in linked.markdown)
    assert {k: param(linked, k) for k in LINK} == LINK  # the URL still says so


def test_changing_a_widget_rewrites_the_url_and_keeps_the_rest(
    timeout: int, sample_log: Path
) -> None:
    at = open_link(LINK, timeout)
    at.segmented_control(key=f"results_method_{THREE_ARMS}").set_value("fixed")
    run(at)
    assert at.segmented_control(key=f"results_method_{THREE_ARMS}").value == "fixed"
    assert param(at, "method") == "fixed"  # not undone by the link's bayesian
    at.selectbox(key=f"results_metric_{THREE_ARMS}").select("orders_per_user")
    run(at)
    assert param(at, "metric") == "orders_per_user"
    at.sidebar.date_input[0].set_value(None)
    run(at)
    assert param(at, "as_of") is None
    assert {k: param(at, k) for k in ("experiment", "scale", "variant")} == {
        "experiment": THREE_ARMS,
        "scale": "abs",
        "variant": "threshold_35",
    }


def test_bad_values_fall_back_to_defaults_with_a_note(
    timeout: int, sample_log: Path
) -> None:
    at = open_link(
        {
            "experiment": THREE_ARMS,
            "method": "magic",
            "scale": "log",
            "metric": "nope`\x1b",
            "variant": "control",
            "as_of": "2026-02-30",
        },
        timeout,
    )
    assert at.segmented_control(key=f"results_method_{THREE_ARMS}").value == "fixed"
    assert at.segmented_control(key="results_scale").value == "rel"
    assert at.selectbox(key=f"results_variant_{THREE_ARMS}").value == "threshold_25"
    notes = " ".join(c.value for c in [*at.caption, *at.sidebar.caption])
    assert "method=`magic` is not one of sequential, fixed, bayesian" in notes
    assert "metric=`nope??` is not one of" in notes
    assert "variant=`control` is not one of threshold_25, threshold_35" in notes
    assert "as_of=`2026-02-30` is not a day" in notes
    assert at.sidebar.date_input[0].value is None
    assert param(at, "method") == "fixed"  # the URL now names what is shown
    assert param(at, "as_of") is None
