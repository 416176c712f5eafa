"""CONTRACT §4 "One set of numbers", on every surface, every row and every day.

The invariants are checked on the JSON of ``analyze --history`` (what every other
surface reads) for the bundled sample and for random small experiments: every
config option that changes a level or an interval (alpha, correction, decision
method, mixture or group sequential test, CUPED, a Bayesian prior, two
treatments), and the CSV rows and the scorecard are checked to carry exactly the
same numbers.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxlab import charts
from cxlab.analysis import (
    ExperimentResult,
    day_of_history,
    history_until,
    with_details,
)
from cxlab.api import results_for, summarize_all
from cxlab.config import Catalog, Experiment, load_catalog, load_experiments
from cxlab.decision import METHODS
from cxlab.events import resolve_source
from cxlab.report import csv_rows, experiment_to_dict
from cxlab.summaries import Summaries, at_day

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = ("fixed", "sequential", "bayesian")
WEIGHTS = {2: (0.5, 0.5), 3: (0.4, 0.3, 0.3)}


def _excludes_zero(ci: list[float]) -> bool:
    return ci[0] > 0 or ci[1] < 0


def _finite(ci: list[float] | None) -> bool:
    return ci is not None and all(v is not None and math.isfinite(v) for v in ci)


def check_result(row: dict[str, Any], exp: dict[str, Any]) -> None:
    """Every rule of CONTRACT §4 "One set of numbers" on one JSON result."""
    alpha = exp["alpha"]
    where = f"{exp['experiment']} {exp['as_of']} {row['metric']}/{row['variant']}"
    cuped = row.get("cuped") or {}
    abs_est = cuped.get("abs_delta", row["abs_delta"])
    rel_est = cuped.get("rel_delta", row["rel_delta"])
    for name in BLOCKS:
        block = row[name]
        level = block["alpha"]
        assert 0 < level <= alpha * (1 + 1e-9), where
        if name != "bayesian" and block["p_value"] is not None:
            p, p_adj = block["p_value"], block["adjusted_p_value"]
            assert p <= p_adj * (1 + 1e-9), where
            if p_adj > 0:  # α·p/p̃ decides exactly as p̃ ≤ α
                assert level == pytest.approx(alpha * p / p_adj, rel=1e-6), where
            if row["role"] == "guardrail":
                assert level == alpha, where
        abs_ci, rel_ci = block.get("abs_ci"), block["rel_ci"]
        if _finite(abs_ci) and _finite(rel_ci):
            assert _excludes_zero(abs_ci) == _excludes_zero(rel_ci), where
        for ci in (abs_ci, rel_ci):
            if _finite(ci):
                assert ci[0] < ci[1], f"{where} {name}: zero width {ci}"
        if name != "bayesian":
            if _finite(abs_ci):
                assert abs_ci[0] < abs_est < abs_ci[1], f"{where} {name} {abs_ci}"
            if _finite(rel_ci):
                assert rel_ci[0] < rel_est < rel_ci[1], f"{where} {name} {rel_ci}"
            if _finite(abs_ci) and p_adj is not None:
                assert _excludes_zero(abs_ci) == (p <= level), where
    decided = row[exp["decision"]]
    finite = [ci for ci in (decided.get("abs_ci"), decided["rel_ci"]) if _finite(ci)]
    if row["significant"]:
        assert finite, where
        sides = {ci[0] > 0 for ci in finite}
        assert all(_excludes_zero(ci) for ci in finite), where
        assert len(sides) == 1 or row["control"]["value"] < 0, where
        assert row["verdict"] in ("win", "loss"), where
    else:
        assert not any(_excludes_zero(ci) for ci in finite), where
        assert row["verdict"] == "inconclusive", where
    level_text = f"{(1 - decided['alpha']) * 100:.2f}".rstrip("0").rstrip(".")
    if _finite(decided.get("abs_ci")):
        assert f"({level_text}% " in row["summary"], where
        if row["metric"] == "nps":
            assert " points (" in row["summary"], where
    else:
        assert "not enough data" in row["summary"], where


def check_experiment(result: ExperimentResult) -> None:
    """The JSON invariants, and the CSV and the scorecard carrying the same numbers."""
    payload = experiment_to_dict(result)
    for row in payload["results"]:
        check_result(row, payload)
    for csv_row, row in zip(csv_rows([payload]), payload["results"], strict=True):
        for name in BLOCKS:
            assert csv_row[f"{name}_alpha"] == row[name]["alpha"]
            assert csv_row[f"{name}_rel_ci_low"] == row[name]["rel_ci"][0]
            assert csv_row[f"{name}_abs_ci_high"] == row[name]["abs_ci"][1]
        assert csv_row["summary"] == row["summary"]
    for method in METHODS:
        shown = charts.scorecard_frame(result, method).to_dicts()
        by_key = {(r["metric"], r["variant"]): r for r in shown}
        for row in result.results:
            call = row.calls[method]
            text = by_key[row.metric.label, row.variant]
            assert text["interval"] == charts.ci_text(row, call, "rel")
            assert text["delta"] == charts.format_delta(
                row.metric, charts.call_delta(row, call, "rel"), "rel"
            )


# --- the bundled sample, every experiment, every day -----------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[Catalog, list[Experiment], dict[str, Summaries]]:
    """The bundled sample's catalog, experiments and summaries (one scan)."""
    events = ROOT / "data" / "events.parquet"
    if not events.is_file():
        from cxlab.sample import write_sample

        write_sample(events)
    catalog = load_catalog(ROOT / "experiments" / "metrics.yaml")
    experiments = load_experiments(ROOT / "experiments", catalog)
    return (
        catalog,
        experiments,
        summarize_all(resolve_source(events), experiments, catalog),
    )


@pytest.fixture(scope="module")
def sample_histories(sample) -> list[list[ExperimentResult]]:
    catalog, experiments, summaries = sample
    return [results_for(e, catalog, summaries[e.id], history=True) for e in experiments]


def test_the_sample_keeps_every_invariant_on_every_day(sample_histories) -> None:
    days = 0
    for history in sample_histories:
        for result in history:
            check_experiment(result)
            days += 1
    assert days > 100  # eight experiments of several weeks each


def test_the_issue_examples_now_agree(sample_histories) -> None:
    last = {h[-1].experiment.id: h[-1] for h in sample_histories}
    email = last["proactive-shipping-email"]
    contact = email.result("contact_rate").sequential
    assert contact.abs_ci[0] < contact.abs_delta < contact.abs_ci[1]
    nps = email.result("nps")
    assert nps.summary.split("(")[1].startswith(f"{(1 - nps.call.alpha) * 100:g}% CI")
    carousel = last["recommendations-carousel"].result("revenue_per_user")
    assert _excludes_zero(list(carousel.call.rel_ci)) == carousel.significant


def test_an_earlier_as_of_history_is_the_whole_one_up_to_that_day(
    sample, sample_histories
) -> None:
    """history_until (the results page's as-of day) == analyze --history --as-of."""
    catalog, experiments, summaries = sample
    health_moved = 0
    for exp, whole in zip(experiments, sample_histories, strict=True):
        days = [whole[0].as_of, whole[len(whole) // 2].as_of, whole[-1].as_of]
        if exp.end is not None and whole[-1].as_of >= exp.end:  # ended: days after
            days += [exp.end + dt.timedelta(days=k) for k in (1, 4)]
        for day in days:
            cut = at_day(summaries[exp.id], day, catalog)
            direct = results_for(exp, catalog, cut, history=True)
            last = results_for(exp, catalog, cut, history=False)[0]
            # repr: every field, the details included, each float to its last digit
            assert [repr(r) for r in history_until(whole, last)] == [
                repr(r) for r in direct
            ], f"{exp.id} as of {day}"
            health_moved += direct[0].health != whole[0].health
    assert health_moved > 0  # the earlier days carry the as-of day's health
    with pytest.raises(ValueError, match="does not run through"):
        history_until(sample_histories[0][:1], sample_histories[0][-1])


def test_the_portfolios_row_with_its_details_is_the_as_of_result(
    sample, sample_histories
) -> None:
    """The portfolio analyses without the details; the results page adds them."""
    catalog, experiments, summaries = sample
    detailed = set()
    for exp, whole in zip(experiments, sample_histories, strict=True):
        for day in (whole[0].as_of, whole[len(whole) // 2].as_of, whole[-1].as_of):
            cut = at_day(summaries[exp.id], day, catalog)
            row = results_for(exp, catalog, cut, history=False, details=False)[0]
            full = results_for(exp, catalog, cut, history=False)[0]
            assert row.novelty == ()
            assert all(r.beta_binomial is None for r in row.results)
            # repr: every field, NaN included, each float to its last digit
            assert repr(with_details(row, catalog, cut)) == repr(full), exp.id
            if full.novelty:
                detailed.add("novelty")
            if any(r.beta_binomial for r in full.results):
                detailed.add("beta_binomial")
    assert detailed == {"novelty", "beta_binomial"}


def test_every_day_of_a_history_is_that_days_as_of_row(
    sample, sample_histories
) -> None:
    """day_of_history (the portfolio's row off a history) == analysed at that day."""
    catalog, experiments, summaries = sample
    not_read: list[tuple[str, dt.date]] = []
    for exp, whole in zip(experiments, sample_histories, strict=True):
        for day in (r.as_of for r in whole):
            cut = at_day(summaries[exp.id], day, catalog)
            row = day_of_history(whole, catalog, cut)
            if row is None:
                not_read.append((exp.id, day))
                continue
            assert repr(row) == repr(
                results_for(exp, catalog, cut, history=False, details=False)[0]
            ), f"{exp.id} as of {day}"
    # Its first day had met one contact reason of those the whole history has.
    assert not_read == [("proactive-shipping-email", dt.date(2026, 9, 7))]


def test_a_day_after_an_experiment_s_end_is_its_last_day_read_off(
    sample, sample_histories
) -> None:
    """The portfolio as of a day after an experiment ended: no new analysis."""
    catalog, experiments, summaries = sample
    ended = 0
    for exp, whole in zip(experiments, sample_histories, strict=True):
        if exp.end is None or whole[-1].as_of < exp.end:
            continue  # running: its history ends at the log's last day
        ended += 1
        for later in (1, 8):
            day = exp.end + dt.timedelta(days=later)
            cut = at_day(summaries[exp.id], day, catalog)
            row = day_of_history(whole, catalog, cut)
            assert row is not None, f"{exp.id} as of {day}"
            assert row.as_of == day
            assert repr(row) == repr(
                results_for(exp, catalog, cut, history=False, details=False)[0]
            ), f"{exp.id} as of {day}"
    assert ended == 7  # a group-sequential one (click-to-call) among them


# --- random small experiments ----------------------------------------------------

CONFIGS = st.fixed_dictionaries(
    {
        "alpha": st.sampled_from([0.01, 0.05, 0.1]),
        "correction": st.sampled_from(["holm", "bh", "none"]),
        "decision": st.sampled_from(["sequential", "fixed", "bayesian"]),
        "sequential_method": st.sampled_from(["mixture", "group"]),
        "cuped_days": st.sampled_from([0, 3]),
        "bayes_prior": st.sampled_from([None, {"mean": 0.0, "sd": 0.3}]),
        "treatments": st.integers(1, 2),
        "users": st.integers(40, 400),
        "effect": st.sampled_from([0.0, 0.3, 1.0]),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def random_log(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Exposures over five days, pre-period activity, orders, contacts and NPS.

    Contacts carry a reason (the treatment cuts one of them) and are resolved
    hours later, some only after the log ends (still open) or past the horizon.
    """
    rng = np.random.default_rng(config["seed"])
    arms = ["control", "treatment", "treatment_b"][: config["treatments"] + 1]
    rows = []
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    for user in range(config["users"] * len(arms)):
        arm = arms[user % len(arms)]
        lift = config["effect"] * (arm != "control")
        seen = start + dt.timedelta(minutes=int(rng.integers(0, 5 * 24 * 60 - 120)))
        keen = rng.random() < 0.5  # pre-period behaviour predicts the outcome
        rows.append(_row(seen, user, "exposure", variant=arm))
        if keen:  # the pre-period of CUPED for every type: orders, contacts, NPS
            before = start - dt.timedelta(days=1)
            rows.append(_row(before, user, "order", 20.0))
            if rng.random() < 0.5:
                rows.append(_row(before, user, "contact"))
            rows.append(_row(before, user, "nps_response", float(rng.integers(0, 11))))
        for kind, chance, value in (
            ("order", 0.15 + 0.25 * keen + 0.1 * lift, 10 + 30 * rng.random()),
            ("contact", 0.2 - 0.1 * lift, None),
            ("nps_response", 0.4, float(rng.integers(0, 11))),
        ):
            if rng.random() < chance:
                moment = seen + dt.timedelta(minutes=int(rng.integers(1, 100)))
                reason = None
                if kind == "contact":
                    reasons = ["late", "billing", "damaged"][int(lift > 0.5) :]
                    reason = str(rng.choice([*reasons, None]))
                    hours = rng.exponential(30 * (1 - 0.3 * lift))
                    done = moment + dt.timedelta(hours=float(hours))
                    rows.append(_row(done, user, "contact_resolved"))
                rows.append(_row(moment, user, kind, value, reason=reason))
    return rows


def _row(moment, user, event, value=None, variant=None, reason=None) -> dict:
    return {
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user_id": f"u{user}",
        "event": event,
        "experiment_id": "exp" if event == "exposure" else None,
        "variant": variant,
        "value": value,
        "reason": None if reason == "None" else reason,
    }


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=CONFIGS)
def test_random_experiments_keep_every_invariant_on_every_day(make_lab, config):
    arms = ["control", "treatment", "treatment_b"][: config["treatments"] + 1]
    with tempfile.TemporaryDirectory() as folder:
        lab = make_lab(Path(folder))
        fields = {
            k: config[k]
            for k in ("alpha", "correction", "decision", "sequential_method")
        }
        path = lab.experiment(
            variants=[
                {"id": a, "weight": w}
                for a, w in zip(arms, WEIGHTS[len(arms)], strict=True)
            ],
            secondary_metrics=[
                "revenue",
                "nps",
                "contacts_per_order",
                "contact_reasons",
                "time_to_resolution",
            ],
            guardrail_metrics=["orders"],
            cuped_days=config["cuped_days"],
            bayes_prior=config["bayes_prior"],
            planned_users=2 * config["users"] * len(arms),
            **fields,
        )
        catalog = load_catalog(lab.catalog_path)
        experiments = load_experiments(path.parent, catalog)
        source = resolve_source(lab.log(random_log(config), "events.parquet"))
        summaries = summarize_all(source, experiments, catalog)
        history = results_for(experiments[0], catalog, summaries["exp"], history=True)
    assert history
    for result in history:
        check_experiment(result)
    # Days after its end (2026-10-05) are its last day's numbers, read off.
    assert history[-1].as_of == experiments[0].end
    for later in (1, 3):
        day = experiments[0].end + dt.timedelta(days=later)
        cut = at_day(summaries["exp"], day, catalog)
        row = day_of_history(history, catalog, cut)
        assert row is not None
        assert row.as_of == day
        (analysed,) = results_for(
            experiments[0], catalog, cut, history=False, details=False
        )
        assert repr(row) == repr(analysed)
