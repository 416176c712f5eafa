"""Honest states: broken configs stay local, unknown ids, empty and late data."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import portfolio_details, scorecard_shown

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"
SAMPLE_IDS = sorted(
    p.stem for p in (ROOT / "experiments").glob("*.yaml") if p.stem != "metrics"
)
LAST_DAY = "26 Oct 2026"  # the sample log's last event (data/README.md)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, sample_log: Path) -> Path:
    """The bundled experiments with three broken files and one never exposed."""
    folder = tmp_path_factory.mktemp("lab") / "experiments"
    shutil.copytree(ROOT / "experiments", folder)
    call = folder / "click-to-call.yaml"
    call.write_text(call.read_text().replace("owner:", "colour: red\nowner:"))
    aa = folder / "checkout-aa-test.yaml"
    aa.write_text(aa.read_text() + "guardrail_metrics: [no_such_metric\n")
    promise = folder / "delivery-date-promise.yaml"
    promise.write_text(
        promise.read_text().replace("primary_metric:", "primary_metrik:")
    )
    ghost = (folder / "returns-portal-chat.yaml").read_text()
    (folder / "ghost-test.yaml").write_text(
        ghost.replace("id: returns-portal-chat", "id: ghost-test")
    )
    return folder


def page(name: str, timeout: int, folder: Path | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=timeout)
    if folder is not None:
        at.session_state["experiments_dir"] = str(folder)
    for key, value in state.pop("query", {}).items():
        at.query_params[key] = value
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception
    return at


def banner(at: AppTest) -> str:
    return next(w.value for w in at.warning if "could not be loaded" in w.value)


# --- one broken config disables its experiment only -----------------------------------


@pytest.mark.parametrize(
    "name", ["portfolio.py", "results.py", "planner.py", "data.py"]
)
def test_broken_configs_are_named_by_file_and_line_on_every_page(
    broken: Path, timeout: int, name: str
) -> None:
    text = banner(page(name, timeout, broken))
    assert text.startswith("**3 experiment config(s) could not be loaded")
    assert "`experiments/click-to-call.yaml:" in text
    assert "unknown key 'colour'" in text
    assert "`experiments/checkout-aa-test.yaml:" in text
    assert "`experiments/delivery-date-promise.yaml:" in text


def test_the_portfolio_lists_every_experiment_that_loads(
    broken: Path, timeout: int
) -> None:
    at = page("portfolio.py", timeout, broken)
    table = portfolio_details(at)
    shown = sorted(link.split("=")[1] for link in table["link"])
    broken_ids = {"click-to-call", "checkout-aa-test", "delivery-date-promise"}
    assert shown == sorted({*SAMPLE_IDS, "ghost-test"} - broken_ids)
    assert "No exposures in the log, so no numbers: ghost-test." in [
        i.value for i in at.info
    ]
    states = dict(zip(table["link"], table["state"], strict=True))
    assert states["results?experiment=ghost-test"] == "no exposures"
    assert states["results?experiment=proactive-shipping-email"] == "ok"


def test_results_of_a_healthy_experiment_still_render_beside_a_broken_one(
    broken: Path, timeout: int
) -> None:
    at = page("results.py", timeout, broken, query={"experiment": "click-to-call"})
    assert "Unknown experiment id `click-to-call`" in at.error[0].value
    at = page(
        "results.py", timeout, broken, query={"experiment": "proactive-shipping-email"}
    )
    assert at.title[0].value == "Proactive shipping e-mail"
    assert scorecard_shown(at).shape[0] > 0
    assert "click-to-call" not in at.selectbox(key="results_experiment").options


# --- explicit data states ---------------------------------------------------------


def test_an_experiment_without_exposures_says_so_instead_of_results(
    broken: Path, timeout: int
) -> None:
    at = page("results.py", timeout, broken, query={"experiment": "ghost-test"})
    assert [w.value for w in at.warning if "No exposures" in w.value] == [
        "No exposures in the log: no user was exposed to ghost-test between its "
        "start on 12 Oct 2026 and 26 Oct 2026. Check that the log's exposure rows "
        "carry experiment_id 'ghost-test' and its variants."
    ]
    assert scorecard_shown(at) is None
    assert not [m for m in at.markdown if "Traffic split" in m.value]


def test_an_as_of_before_the_start_is_not_started(timeout: int, sample_log) -> None:
    at = page(
        "results.py",
        timeout,
        query={"experiment": "click-to-call"},
        as_of=dt.date(2026, 9, 1),
    )
    assert at.title[0].value == "Click-to-call button in the app"
    assert at.info[0].value.startswith(
        "Not started yet: click-to-call starts on 14 Sep 2026, after the as-of "
        "date 01 Sep 2026."
    )
    assert scorecard_shown(at) is None
    assert not at.success  # no recommendation box


def test_an_as_of_after_the_data_names_the_last_day_and_keeps_the_results(
    timeout: int, sample_log
) -> None:
    at = page(
        "results.py",
        timeout,
        query={"experiment": "returns-portal-chat"},
        as_of=dt.date(2026, 12, 1),
    )
    late = [w.value for w in at.warning if "after the data ends" in w.value]
    assert late == [
        "The as-of date 01 Dec 2026 is after the data ends: the log's last event is "
        f"on {LAST_DAY}, so these numbers are those of that day and nothing after "
        "it is known."
    ]
    assert scorecard_shown(at).shape[0] > 0


def test_the_portfolio_names_experiments_not_started_and_past_the_data(
    timeout: int, sample_log
) -> None:
    early = page("portfolio.py", timeout, as_of=dt.date(2026, 9, 10))
    started_later = "click-to-call, free-shipping-threshold, help-centre-redesign"
    assert any(
        i.value.startswith("Not started yet as of the as-of date, so no numbers: ")
        and started_later in i.value
        for i in early.info
    )
    late = page("portfolio.py", timeout, as_of=dt.date(2026, 12, 1))
    assert (
        f"The as-of date is after the data ends on {LAST_DAY}: the numbers of "
        "returns-portal-chat stand at that day, the last with data."
    ) in [i.value for i in late.info]
    table = portfolio_details(late)
    states = dict(zip(table["id"], table["state"], strict=True))
    assert states["returns-portal-chat"] == "data ends 26 Oct"
    assert states["click-to-call"] == "ok"  # ended 18 Oct


# --- unknown ids -------------------------------------------------------------------


def test_an_unknown_experiment_id_is_named_and_the_real_ones_linked(
    timeout: int, sample_log
) -> None:
    at = page("results.py", timeout, query={"experiment": "no-such-test"})
    assert at.error[0].value == (
        "Unknown experiment id `no-such-test`. The experiments are:"
    )
    links = at.markdown[0].value
    for experiment_id in SAMPLE_IDS:
        assert f"(results?experiment={experiment_id})" in links
    assert not at.title


# --- planner refusals --------------------------------------------------------------


def set_number(at: AppTest, suffix: str, value: float) -> None:
    next(n for n in at.number_input if n.key.endswith(suffix)).set_value(value)


def test_the_planner_refuses_an_mde_above_one_hundred_percent(
    timeout: int, sample_log
) -> None:
    at = page("planner.py", timeout)
    set_number(at, "planner_mde", 150.0)
    at.run()
    assert [e.value for e in at.error] == [
        "the relative MDE must be more than 0% and at most 100% (0 < MDE <= 1), "
        "got 150%"
    ]
    assert not at.success


def test_the_planner_calls_a_plan_of_centuries_not_feasible(
    timeout: int, sample_log
) -> None:
    at = page("planner.py", timeout)
    set_number(at, "planner_mde", 0.01)
    set_number(at, "_daily", 100.0)
    at.run()
    assert not at.success
    assert "you would need more than 2 years" in at.warning[0].value
    assert "not feasible" in at.warning[0].value
    days = next(m for m in at.metric if m.label == "Days needed")
    assert days.value == "more than 2 years"
