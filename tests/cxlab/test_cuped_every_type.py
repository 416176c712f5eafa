"""CUPED on ratio and NPS metrics, end to end: log → summaries → adjusted tests.

The expected numbers are computed directly from the per-user arrays with numpy
least squares (the regression-adjusted estimator of Deng, Xu, Kohavi & Walker
2013; for the ratio on the delta-method linearisation, Deng, Knoblich & Lu 2018).
"""

from __future__ import annotations

import numpy as np
import pytest

from cxlab.api import results_for
from cxlab.report import experiment_to_dict

ARMS = ("control", "treatment")


def _theta(outcome: np.ndarray, covariate: np.ndarray) -> float:
    """Least squares slope of outcome on covariate, with an intercept."""
    design = np.column_stack([np.ones(covariate.size), covariate])
    (_, slope), *_ = np.linalg.lstsq(design, outcome, rcond=None)
    return float(slope)


def _score(answer: np.ndarray) -> np.ndarray:
    return np.where(answer >= 9, 100.0, np.where(answer < 7, -100.0, 0.0))


@pytest.fixture
def log(lab) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """60 users per arm with orders, contacts and NPS answers before and after."""
    rng = np.random.default_rng(3)
    e, rows, users = lab.event, [], {}
    for arm in ARMS:
        per = {k: [] for k in ("x", "y", "x0", "y0", "s", "a0", "answered")}
        for i in range(60):
            uid = f"{arm}-{i}"
            y0, y = int(rng.integers(1, 4)), int(rng.integers(1, 5))
            x0 = int(rng.integers(0, y0 + 1))
            x = min(x0 + int(rng.integers(0, 2)), y)
            before = int(rng.integers(0, 11)) if i % 3 else None
            after = int(np.clip((before or 7) + rng.integers(-2, 3), 0, 10))
            answered = i % 5 != 0
            rows += [e(f"2026-09-2{6 + k}T08:00:00Z", uid, "order") for k in range(y0)]
            rows += [
                e(f"2026-09-2{6 + k}T09:00:00Z", uid, "contact") for k in range(x0)
            ]
            if before is not None:
                rows.append(
                    e("2026-09-29T08:00:00Z", uid, "nps_response", value=before)
                )
            rows.append(e("2026-10-01T08:00:00Z", uid, "exposure", arm))
            rows += [e(f"2026-10-0{2 + k}T08:00:00Z", uid, "order") for k in range(y)]
            rows += [e(f"2026-10-0{2 + k}T09:00:00Z", uid, "contact") for k in range(x)]
            if answered:
                rows.append(e("2026-10-03T08:00:00Z", uid, "nps_response", value=after))
            prior = -1 if before is None else before
            for key, v in zip(per, (x, y, x0, y0, after, prior, answered), strict=True):
                per[key].append(v)
        users[arm] = {k: np.array(v, dtype=float) for k, v in per.items()}
    return rows, users


def _results(lab, rows, metric):
    s = lab.summarize(rows, primary_metric=metric, cuped_days=7)
    exp, catalog = lab.load()
    (result,) = results_for(exp, catalog, s, history=False)
    return result.result(metric), experiment_to_dict(result)["results"][0]


def test_nps_cuped_equals_regression_on_the_last_earlier_answer(lab, log) -> None:
    rows, users = log
    row, payload = _results(lab, rows, "nps")
    arms = {}
    for arm in ARMS:
        u = users[arm]
        keep = u["answered"] == 1
        prior = np.where(u["a0"] >= 0, _score(u["a0"]), 0.0)  # 0 without an answer
        arms[arm] = (_score(u["s"])[keep], prior[keep])
    s_all = np.concatenate([a[0] for a in arms.values()])
    x_all = np.concatenate([a[1] for a in arms.values()])
    theta = _theta(s_all, x_all)
    adjusted = {arm: (s - theta * (x - x_all.mean())) for arm, (s, x) in arms.items()}
    assert row.cuped.theta == pytest.approx(theta, rel=1e-9)
    delta = adjusted["treatment"].mean() - adjusted["control"].mean()
    assert row.cuped.abs_delta == pytest.approx(delta, rel=1e-9)
    se = np.sqrt(sum(a.var(ddof=1) / a.size for a in adjusted.values()))
    assert row.fixed.se == pytest.approx(se, rel=1e-9)
    plain = np.sqrt(sum(s.var(ddof=1) / s.size for s, _ in arms.values()))
    assert payload["cuped"]["variance_reduction"] == pytest.approx(
        1 - se**2 / plain**2, rel=1e-9
    )
    assert payload["cuped"]["variance_reduction"] > 0.2


def test_ratio_cuped_equals_regression_of_the_linearised_ratios(lab, log) -> None:
    rows, users = log
    row, payload = _results(lab, rows, "contacts_per_order")

    def linear(num, den):
        return (num - num.sum() / den.sum() * den) / den.mean()

    pooled = {k: np.concatenate([users[a][k] for a in ARMS]) for k in users["control"]}
    theta = _theta(linear(pooled["x"], pooled["y"]), linear(pooled["x0"], pooled["y0"]))
    pre_ratio = pooled["x0"].sum() / pooled["y0"].sum()
    means, variances = {}, {}
    for arm in ARMS:
        u = users[arm]
        means[arm] = u["x"].sum() / u["y"].sum() - theta * (
            u["x0"].sum() / u["y0"].sum() - pre_ratio
        )
        lin = linear(u["x"], u["y"]) - theta * linear(u["x0"], u["y0"])
        variances[arm] = lin.var(ddof=1) / lin.size
    assert row.cuped.theta == pytest.approx(theta, rel=1e-9)
    assert row.cuped.abs_delta == pytest.approx(
        means["treatment"] - means["control"], rel=1e-9
    )
    assert row.fixed.se == pytest.approx(np.sqrt(sum(variances.values())), rel=1e-9)
    assert 0.1 < payload["cuped"]["variance_reduction"] < 1
    assert "reason" not in payload["cuped"]
