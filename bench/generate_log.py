"""Seeded generator of large event logs in the CONTRACT schema, with matching configs.

    python bench/generate_log.py --events 10_000_000 [--csv] [--out bench/data]

Writes ``<out>/<N>/events.parquet`` (and ``events.csv`` with --csv) plus an
``experiments/`` folder: ~10 experiments of 2-3 variants with staggered windows,
overlapping users, skewed user activity, and the row mix ~10% exposure / 20% order /
5% contact / 3% nps_response / 62% page_view, with a few multiple-exposure users and
out-of-window exposures. Generated data stays out of git (bench/data is ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import yaml

START = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
DAYS = 56
MIX = {"exposure": 0.10, "order": 0.20, "contact": 0.05, "nps_response": 0.03}
CHUNK = 5_000_000

METRICS = {
    "conversion": {"type": "proportion", "event": "order", "direction": "increase"},
    "revenue_per_user": {
        "type": "mean",
        "event": "order",
        "aggregate": "sum",
        "direction": "increase",
    },
    "nps": {"type": "nps", "event": "nps_response", "direction": "increase"},
    "contact_rate": {"type": "proportion", "event": "contact", "direction": "decrease"},
    "contacts_per_order": {
        "type": "ratio",
        "numerator": {"event": "contact", "aggregate": "count"},
        "denominator": {"event": "order", "aggregate": "count"},
        "direction": "decrease",
    },
}


def experiments(n: int = 10) -> list[dict]:
    """Ten experiments with staggered windows and 2-3 arms."""
    out = []
    for i in range(n):
        arms = ["control", "treatment"] if i % 3 else ["control", "b", "c"]
        start = START.date() + dt.timedelta(days=4 * i)
        out.append(
            {
                "id": f"bench-{i:02d}",
                "start": start,
                "end": start + dt.timedelta(days=21),
                "variants": [
                    {"id": a, "weight": round(1 / len(arms), 10)} for a in arms
                ],
                "primary_metric": "conversion",
                "secondary_metrics": ["revenue_per_user", "nps", "contact_rate"],
                "guardrail_metrics": ["contacts_per_order"],
                "dimensions": ["platform"],
            }
        )
    # weights must sum to 1 exactly enough for the loader
    for exp in out:
        if len(exp["variants"]) == 3:
            exp["variants"][2]["weight"] = round(
                1 - 2 * exp["variants"][0]["weight"], 10
            )
    return out


def _chunk(rng: np.random.Generator, rows: int, n_users: int, weights: np.ndarray,
           exps: list[dict]) -> pl.DataFrame:  # fmt: skip
    kinds = np.array(["exposure", "order", "contact", "nps_response", "page_view"])
    probs = np.array([*MIX.values(), 1 - sum(MIX.values())])
    event = kinds[rng.choice(5, size=rows, p=probs)]
    user = rng.choice(n_users, size=rows, p=weights)
    seconds = rng.integers(0, DAYS * 86_400, size=rows)
    is_exp = event == "exposure"
    exp_idx = rng.integers(0, len(exps), size=rows)
    starts = np.array([(e["start"] - START.date()).days for e in exps]) * 86_400
    # exposures fall inside their experiment's window, 0.5% of them outside it
    inside = starts[exp_idx] + rng.integers(0, 22 * 86_400, size=rows)
    seconds = np.where(is_exp & (rng.random(rows) > 0.005), inside, seconds)
    n_arms = np.array([len(e["variants"]) for e in exps])[exp_idx]
    arm = (user * 2_654_435_761 + exp_idx * 97) % 4_294_967_296 % n_arms
    flip = rng.random(rows) < 0.002  # a few users see another arm
    arm = np.where(flip, (arm + 1) % n_arms, arm)
    arm_names = np.array(["control", "treatment", "b", "c"])
    variant = np.where(
        n_arms == 2, arm_names[arm], arm_names[np.where(arm == 0, 0, arm + 1)]
    )
    value = np.full(rows, np.nan)
    value = np.where(
        event == "order", np.round(rng.lognormal(3.5, 0.8, rows), 2), value
    )
    value = np.where(event == "contact", rng.gamma(2.0, 15.0, rows).round(1), value)
    value = np.where(event == "nps_response", rng.integers(0, 11, rows), value)
    platform = np.array(["ios", "android", "web"])[user % 3]
    return pl.DataFrame(
        {
            "timestamp": pl.Series((seconds + int(START.timestamp())) * 1_000_000).cast(
                pl.Datetime("us", "UTC")
            ),
            "user_id": pl.Series(user).cast(pl.String),
            "event": event,
            "experiment_id": pl.Series(np.array([e["id"] for e in exps])[exp_idx]),
            "variant": pl.Series(variant),
            "value": value,
            "platform": platform,
        }
    ).with_columns(
        pl.col("value").fill_nan(None),
        pl.when(pl.Series(is_exp)).then(pl.col("experiment_id", "variant")),
    )


def generate(n_events: int, out: Path, *, csv: bool = False, seed: int = 11) -> Path:
    """Write a log of ``n_events`` rows and its configs; return the folder."""
    folder = out / f"{n_events}"
    (folder / "experiments").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_users = max(n_events // 20, 100)
    activity = rng.pareto(1.5, n_users) + 1  # skewed: a few very active users
    weights = activity / activity.sum()
    exps = experiments()
    parts = []
    remaining = n_events
    while remaining > 0:
        rows = min(CHUNK, remaining)
        parts.append(_chunk(rng, rows, n_users, weights, exps))
        remaining -= rows
    frame = pl.concat(parts)
    frame.write_parquet(folder / "events.parquet")
    if csv:
        frame.write_csv(folder / "events.csv")
    (folder / "experiments" / "metrics.yaml").write_text(yaml.safe_dump(METRICS))
    for exp in exps:
        (folder / "experiments" / f"{exp['id']}.yaml").write_text(
            yaml.safe_dump(exp, sort_keys=False)
        )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--events", type=lambda s: int(s.replace("_", "")), required=True
    )
    parser.add_argument("--out", type=Path, default=Path("bench/data"))
    parser.add_argument("--csv", action="store_true")
    args = parser.parse_args()
    print(generate(args.events, args.out, csv=args.csv))


if __name__ == "__main__":
    main()
