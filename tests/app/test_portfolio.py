"""The portfolio page shows what the engine computed, for every experiment."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cxlab import charts, portfolio
from cxlab.analysis import ExperimentResult
from tests.app.conftest import executive_tables, portfolio_details

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "portfolio.py")
Results = dict[str, ExperimentResult]


@pytest.fixture(scope="module")
def page(timeout: int, sample_log: Path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=timeout).run()
    assert not at.exception
    portfolio_details(at)  # the details table too
    return at


def metric_value(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_every_configured_experiment_is_a_row_linking_to_its_results(
    page: AppTest, engine_results: Results
) -> None:
    table = page.dataframe[0].value
    assert len(engine_results) == 8
    assert len(table) == len(engine_results)
    assert set(table["link"]) == {
        f"results?experiment={exp_id}" for exp_id in engine_results
    }


def test_each_row_shows_the_engine_verdict_lift_and_recommendation(
    page: AppTest, engine_results: Results
) -> None:
    table = page.dataframe[0].value.set_index("id")
    email = table.loc["proactive-shipping-email"]
    expected = engine_results["proactive-shipping-email"].result("contacts_per_order")
    assert email["primary metric"] == "Contacts per order"
    assert email["lift"] == f"{expected.call.rel_delta * 100:+.1f}%".replace("-", "−")
    assert email["lift"].startswith("−")
    assert expected.verdict == "win"
    assert email["verdict"] == "● win"
    assert email["recommendation"] == "ship"
    # The e-mail changed who answers the NPS survey: a warning, so "check".
    warnings = engine_results["proactive-shipping-email"].warnings
    assert any("changed who answers NPS" in w for w in warnings)
    assert email["health"] == "● check"
    carousel = table.loc["recommendations-carousel"]
    assert carousel["health"] == "● SRM"
    assert carousel["verdict"] == "invalid (SRM)"


def test_tiles_count_what_the_engine_results_imply(
    page: AppTest, engine_results: Results
) -> None:
    # Recomputed here from the configs and the engine's verdicts, independently of
    # cxlab.portfolio.headline: the reference day is the latest as-of day.
    today = max(r.as_of for r in engine_results.values())
    quarter = (today.year, (today.month - 1) // 3)

    def status(r: ExperimentResult) -> str:
        return r.experiment.status or ("stopped" if r.finished else "running")

    def in_quarter(day: dt.date) -> bool:
        return (day.year, (day.month - 1) // 3) == quarter

    decided = [
        r
        for r in engine_results.values()
        if status(r) in ("shipped", "rolled_back", "stopped")
        and in_quarter(r.experiment.end or r.as_of)
    ]
    primaries = [[x for x in r.results if x.role == "primary"] for r in decided]
    wins = sum(
        r.srm.ok and any(x.verdict == "win" for x in rows)
        for r, rows in zip(decided, primaries, strict=True)
    )
    learnings = sum(
        r.srm.ok
        and any(
            (x.role == "primary" and x.verdict != "inconclusive")
            or (x.role == "guardrail" and x.verdict == "loss")
            for x in r.results
        )
        for r in decided
    )
    running = sum(status(r) == "running" for r in engine_results.values())
    assert metric_value(page, "Running now") == str(running) == "1"
    assert metric_value(page, "Decided this quarter") == str(len(decided))
    assert metric_value(page, "Win rate") == f"{wins / len(decided):.0%}"
    assert metric_value(page, "Learning rate") == f"{learnings / len(decided):.0%}"


def test_combined_effect_of_shipped_experiments_is_shrunk_not_summed(
    page: AppTest, engine_results: Results
) -> None:
    effect = portfolio.shipped_impact(
        list(engine_results.values()), "contacts_per_order"
    )
    assert effect is not None
    value, _caption = portfolio.describe_impact(effect)
    assert metric_value(page, "Contacts per order") == value
    assert value.startswith("−")  # shipped experiments cut contacts
    # Shrinkage pulls toward zero: less extreme than the raw sum of the lifts.
    assert abs(effect.estimate) < abs(effect.raw_sum)
    assert any("shrunk toward zero" in c.value for c in page.caption)
    nps = metric_value(page, "NPS")
    assert nps.endswith("pts")
    assert nps.startswith("+")


def test_status_filter_keeps_only_matching_rows(
    timeout: int, engine_results: Results
) -> None:
    at = AppTest.from_file(PAGE, default_timeout=timeout).run()
    at.multiselect(key="portfolio_status").set_value(["shipped"])
    at.button[0].click().run()
    table = portfolio_details(at)
    shipped = {i for i, r in engine_results.items() if r.experiment.status == "shipped"}
    assert set(table["status"]) == {"shipped"}
    assert {link.split("=")[1] for link in table["link"]} == shipped
    seen = executive_tables(at)[0]["experiment"]  # the names in words, as links
    assert {name.rsplit("=", 1)[1].rstrip(")") for name in seen} == shipped


def test_bad_events_path_shows_the_named_error_not_a_traceback(timeout: int) -> None:
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.session_state["events_path"] = "/nowhere/events.parquet"
    at.run()
    assert not at.exception
    assert any("/nowhere/events.parquet" in e.value for e in at.error)


def test_an_earlier_as_of_date_shows_the_portfolio_as_it_stood_then(
    timeout: int,
) -> None:
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.session_state["as_of"] = dt.date(2026, 10, 5)
    at.run()
    assert not at.exception
    table = portfolio_details(at).set_index("id")
    status = table["status"].to_dict()
    # returns-portal-chat starts on 10-12; the shipping e-mail ran 09-07 to 10-18.
    assert status["returns-portal-chat"] == "planned"
    assert status["proactive-shipping-email"] == "running"
    assert status["checkout-aa-test"] == "stopped"  # ended 09-27
    assert table.loc["checkout-aa-test", "days"] == 27
    assert table.loc["proactive-shipping-email", "days"] == 29
    # The results links carry the as-of day.
    assert table.loc["checkout-aa-test", "link"] == (
        "results?experiment=checkout-aa-test&as_of=2026-10-05"
    )
    assert any("05 Oct 2026" in c.value for c in at.caption)


def test_home_is_the_portfolio_with_the_shared_sidebar(timeout: int) -> None:
    app = str(Path(PAGE).parents[1] / "app.py")
    at = AppTest.from_file(app, default_timeout=timeout).run()
    assert not at.exception
    assert at.title[0].value == "Experiment portfolio"
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "Sample log" in sidebar
    assert at.sidebar.date_input[0].label == "As-of date"
    assert at.sidebar.date_input[0].value is None  # each experiment's own as-of


# --- the table for executives -------------------------------------------------------


def test_names_in_words_link_to_results_beside_the_essential_columns(
    page: AppTest, engine_results: Results
) -> None:
    table = executive_tables(page)[0]
    assert list(table.columns) == [
        "experiment",
        "status",
        "primary effect [interval]",
        "verdict",
        "engine says",
        "guardrails",
        "health",
        "progress",
        "ETA",
    ]
    names = {
        f"[{r.experiment.label}](results?experiment={i})"
        for i, r in engine_results.items()
    }
    assert set(table["experiment"]) == names
    chat = table.set_index("experiment").loc[
        "[Chat in the returns portal](results?experiment=returns-portal-chat)"
    ]
    assert chat["status"] == "running"
    assert chat["ETA"].endswith("2026")  # a day, from the last 7 days' traffic
    assert "of plan" in chat["progress"]


def test_the_details_table_is_drawn_only_once_asked_for(timeout: int) -> None:
    at = AppTest.from_file(PAGE, default_timeout=timeout).run()
    assert not at.exception
    assert len(executive_tables(at)[0]) == 8
    assert at.toggle(key="portfolio_details").value is False
    assert not at.dataframe  # not sent (nor converted through pandas) while closed
    assert len(portfolio_details(at)) == 8


def test_a_shipped_experiment_the_engine_calls_review_is_flagged_with_its_note(
    page: AppTest, engine_results: Results
) -> None:
    promise = engine_results["delivery-date-promise"]
    assert promise.experiment.status == "shipped"
    assert promise.recommendation.action == "review"
    table = executive_tables(page)[0].set_index("experiment")
    row = table.loc[
        "[Delivery date promise at checkout](results?experiment=delivery-date-promise)"
    ]
    assert row["status"] == (
        r":orange[⚠ shipped — engine\: review \(not significant\)]"
    )
    details = page.dataframe[0].value.set_index("id")
    assert details.loc["delivery-date-promise", "decision note"] == (
        promise.experiment.decision_note
    )
    email = table.loc[
        "[Proactive shipping e-mail](results?experiment=proactive-shipping-email)"
    ]
    assert email["status"] == "shipped"  # shipped as the engine recommends


def test_each_effect_is_the_call_the_results_page_shows(
    page: AppTest, engine_results: Results
) -> None:
    rows = page.dataframe[0].value.set_index("id")
    for exp_id, result in engine_results.items():
        head = portfolio.headline_row(result)
        scorecard = charts.scorecard_frame(result, result.experiment.decision)
        shown = scorecard.filter(
            (scorecard["metric"] == head.metric.label)
            & (scorecard["variant"] == head.variant)
        ).row(0, named=True)
        assert rows.loc[exp_id, "ci"] == shown["interval"], exp_id
        assert rows.loc[exp_id, "lift"].removesuffix(" points") == shown[
            "delta"
        ].removesuffix(" pts"), exp_id


def test_search_keeps_the_experiments_whose_words_match(timeout: int) -> None:
    at = AppTest.from_file(PAGE, default_timeout=timeout).run()
    at.text_input(key="portfolio_search").set_value("customer-service nps")
    at.button[0].click().run()
    ids = set(portfolio_details(at)["id"])
    assert ids == {"click-to-call"}  # tag customer-service, primary metric NPS
    at.text_input(key="portfolio_search").set_value("no such words")
    at.button[0].click().run()
    assert any("No experiment matches" in i.value for i in at.info)


def test_an_aa_test_decided_this_quarter_is_not_in_the_win_rate(
    timeout: int, tmp_path: Path, engine_results: Results
) -> None:
    folder = tmp_path / "experiments"
    shutil.copytree(Path(PAGE).parents[1] / "experiments", folder)
    aa = folder / "checkout-aa-test.yaml"
    aa.write_text(aa.read_text().replace("end: 2026-09-27", "end: 2026-10-20"))
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.session_state["experiments_dir"] = str(folder)
    at.run()
    assert not at.exception
    decided = [
        r
        for r in engine_results.values()
        if r.experiment.status in ("shipped", "rolled_back", "stopped")
        and r.experiment.end >= dt.date(2026, 10, 1)
        and r.experiment.id != "checkout-aa-test"
    ]
    assert metric_value(at, "Decided this quarter") == str(len(decided))
    wins = sum(portfolio.is_win(r) for r in decided)
    assert metric_value(at, "Win rate") == f"{wins / len(decided):.0%}"
    tile = next(m for m in at.metric if m.label == "Win rate")
    assert "left out: 1 this quarter" in tile.help
    status = portfolio_details(at).set_index("id").loc["checkout-aa-test", "status"]
    assert status == "stopped"
