"""The daily reduction in pandas, the way a typical analysis notebook writes it.

    python bench/impl_pandas.py --events bench/data/1000000/events.parquet \
        --experiments bench/data/1000000/experiments --out /tmp/pandas.parquet

Read the columns, keep in-window exposures, first exposure per (experiment, user),
merge the outcome events onto the users, per-user daily aggregates, a running value
per user (groupby + cumsum / ffill), its daily changes (groupby + diff) summed per
(variant, day), then a cumulative sum over every day of the experiment. Plain
groupby / merge / cumsum; no tricks beyond reading only the needed columns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from impl_duckdb import components, read_configs

COLUMNS = ["timestamp", "user_id", "event", "experiment_id", "variant", "value"]
OUT = ["n", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]


def read_log(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        df = pd.read_csv(path, usecols=COLUMNS, dtype={"user_id": str})
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    else:
        df = pd.read_parquet(path, columns=COLUMNS)
    return df


def user_values(metric, frame: pd.DataFrame) -> tuple:
    """Per-row (x, y, in_population) of one metric from the running aggregates."""
    x = frame[metric.x.name]
    if metric.type == "proportion":
        return (x > 0).astype(float), 0.0, 1.0
    if metric.type == "nps":  # x promoter (9-10), y detractor (0-6): counts
        return (x >= 9).astype(float), (x < 7).astype(float), x.notna().astype(float)
    if metric.type == "ratio":
        return x.fillna(0.0), frame[metric.y.name].fillna(0.0), 1.0
    return x.fillna(0.0), 0.0, 1.0


def reduce(events: Path, experiments: Path) -> pd.DataFrame:
    exps, metrics = read_configs(experiments)
    comps = components(exps, metrics)
    df = read_log(events)

    # --- exposures: first in-window exposure per experiment and user ---
    windows = pd.DataFrame(
        {
            "experiment_id": [e.id for e in exps],
            "w_start": pd.to_datetime([str(e.start) for e in exps], utc=True),
            "w_end": pd.to_datetime(
                [str(e.end + dt.timedelta(days=1)) for e in exps], utc=True
            ),
        }
    )
    expo = df[df["event"] == "exposure"].merge(windows, on="experiment_id")
    expo = expo[
        (expo["timestamp"] >= expo["w_start"]) & (expo["timestamp"] < expo["w_end"])
    ]
    per_variant = (
        expo.groupby(["experiment_id", "user_id", "variant"], as_index=False)
        .agg(since=("timestamp", "min"))
        .sort_values(["experiment_id", "user_id", "since"])
    )
    per_variant["rank"] = per_variant.groupby(["experiment_id", "user_id"]).cumcount()
    users = per_variant[per_variant["rank"] == 0].drop(columns="rank")
    users = users.rename(columns={"since": "first_exposure"})
    second = per_variant[per_variant["rank"] == 1][
        ["experiment_id", "user_id", "since"]
    ]
    users = users.merge(
        second.rename(columns={"since": "conflict_at"}),
        on=["experiment_id", "user_id"],
        how="left",
    ).merge(windows[["experiment_id", "w_end"]], on="experiment_id")
    users["exposure_day"] = users["first_exposure"].dt.floor("D")
    users["conflict_day"] = users["conflict_at"].dt.floor("D")
    users["uk"] = np.arange(len(users))

    # --- outcome events of exposed users, from the first exposure to the end ---
    outcomes = df[df["event"].isin({c.event for c in comps})]
    joined = outcomes.merge(
        users[["uk", "user_id", "first_exposure", "w_end"]], on="user_id"
    )
    joined = joined[
        (joined["timestamp"] >= joined["first_exposure"])
        & (joined["timestamp"] < joined["w_end"])
    ].sort_values("timestamp", kind="stable")  # ties: the later row of the log wins
    joined["day"] = joined["timestamp"].dt.floor("D")
    for c in comps:
        hit = joined["event"] == c.event
        if c.aggregate == "count":
            joined[c.name] = hit.astype(float)
        else:
            joined[c.name] = joined["value"].where(hit)
    aggs = {
        c.name: ("sum" if c.aggregate in ("count", "sum") else "last") for c in comps
    }
    per_user_day = joined.groupby(["uk", "day"], as_index=False).agg(aggs)

    # a user seen in a second variant leaves on that day: an empty row that day
    conflicts = users.loc[users["conflict_day"].notna(), ["uk", "conflict_day"]]
    conflicts = conflicts.rename(columns={"conflict_day": "day"})
    user_days = pd.concat([per_user_day, conflicts], ignore_index=True)
    user_days = user_days.sort_values(["uk", "day"], kind="stable")
    sums = [c.name for c in comps if c.aggregate != "last"]
    lasts = [c.name for c in comps if c.aggregate == "last"]
    user_days[sums] = user_days[sums].fillna(0.0)
    user_days[sums] = user_days.groupby("uk")[sums].cumsum()
    if lasts:
        user_days[lasts] = user_days.groupby("uk")[lasts].ffill()
    user_days = user_days.merge(
        users[["uk", "experiment_id", "variant", "conflict_day"]], on="uk"
    )
    active = user_days["conflict_day"].isna() | (
        user_days["day"] < user_days["conflict_day"]
    )

    # --- per metric: daily changes of each user's value, summed per variant ---
    changes = []
    used = list(dict.fromkeys(m for e in exps for m in e.metrics))
    for m in used:
        x, y, pop = user_values(metrics[m], user_days)
        frame = user_days[["uk", "experiment_id", "variant", "day"]].copy()
        frame["pop"] = np.where(active, pop, 0.0)
        frame["sum_x"] = np.where(active, x, 0.0)
        frame["sum_y"] = np.where(active, y, 0.0)
        frame["sum_xx"] = frame["sum_x"] ** 2
        frame["sum_yy"] = frame["sum_y"] ** 2
        frame["sum_xy"] = frame["sum_x"] * frame["sum_y"]
        if metrics[m].type == "nps":  # counts only: no squares or products
            frame[["sum_xx", "sum_yy", "sum_xy"]] = 0.0
        cols = ["pop", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]
        diffs = frame.groupby("uk")[cols].diff()
        frame[cols] = diffs.fillna(frame[cols])  # first row of a user: its value
        daily = frame.groupby(["experiment_id", "variant", "day"], as_index=False)[
            cols
        ].sum()
        daily["metric"] = m
        changes.append(daily)
    changes = pd.concat(changes, ignore_index=True)

    entering = users.groupby(["experiment_id", "variant", "exposure_day"]).size()
    leaving = users.groupby(["experiment_id", "variant", "conflict_day"]).size()
    flow = (
        entering.rename_axis(["experiment_id", "variant", "day"])
        .sub(leaving.rename_axis(["experiment_id", "variant", "day"]), fill_value=0)
        .rename("d_users")
        .reset_index()
    )

    # --- every day of every experiment, cumulated ---
    grid = pd.DataFrame(
        [
            (e.id, m, v, day, metrics[m].type)
            for e in exps
            for m in e.metrics
            for v in e.variants
            for day in pd.date_range(str(e.start), str(e.end), freq="D", tz="UTC")
        ],
        columns=["experiment_id", "metric", "variant", "day", "type"],
    )
    table = grid.merge(
        changes, on=["experiment_id", "metric", "variant", "day"], how="left"
    ).merge(flow, on=["experiment_id", "variant", "day"], how="left")
    cols = ["pop", "d_users", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]
    table[cols] = table[cols].fillna(0.0)
    table = table.sort_values(["experiment_id", "metric", "variant", "day"])
    table[cols] = table.groupby(["experiment_id", "metric", "variant"])[cols].cumsum()
    table["n"] = (
        np.where(table["type"] == "nps", table["pop"], table["d_users"])
        .round()
        .astype("int64")
    )
    table["day"] = table["day"].dt.date
    return table[["experiment_id", "metric", "variant", "day", *OUT]].reset_index(
        drop=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--experiments", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    table = reduce(args.events, args.experiments)
    if args.out:
        table.to_parquet(args.out, index=False)
    print(f"pandas: {len(table)} rows in {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
