"""The bundled sample log: reproducible, on contract, with recoverable injected effects.

The effect checks attribute users here with plain Polars, independently of the engine:
first in-window exposure, users seen in one variant only, outcome events from the first
exposure to the end of the experiment's last day. An estimate passes when it lies
within 3 standard errors of the injected effect (a chance failure about 1 seed in 400
per check) and, for effects the experiment is meant to detect, the standard error is
small enough that the effect is at least 2 standard errors from zero.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from cxlab.sample import (
    DETRACTOR_COMMENTS,
    LOG_DAYS,
    LOG_START,
    PASSIVE_COMMENTS,
    PLANS,
    PROMOTER_COMMENTS,
    REASONS,
    generate_sample,
    write_sample,
)

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
SCHEMA = {
    "timestamp": pl.Datetime("us", "UTC"),
    "user_id": pl.String,
    "event": pl.String,
    "experiment_id": pl.String,
    "variant": pl.String,
    "value": pl.Float64,
    "platform": pl.String,
    "country": pl.String,
    "channel": pl.String,
    "reason": pl.String,
    "new_customer": pl.Boolean,
    "comment": pl.String,
}
EVENTS = {
    "exposure",
    "page_view",
    "order",
    "delivery",
    "contact",
    "nps_response",
    "contact_resolved",
}
Z_TOLERANCE = 3.0
MIN_Z_OF_EFFECT = 2.0


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return generate_sample()


@pytest.fixture(scope="module")
def configs() -> dict[str, dict]:
    out = {}
    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        if path.name != "metrics.yaml":
            out[path.stem] = yaml.safe_load(path.read_text())
    return out


def window(config: dict) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(config["start"], dt.time(), tzinfo=dt.UTC)
    end = config.get("end")
    if end is None:
        return start, LOG_START + dt.timedelta(days=LOG_DAYS)
    return start, dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC) + dt.timedelta(1)


def variant_ids(config: dict) -> list[str]:
    return [v if isinstance(v, str) else v["id"] for v in config["variants"]]


def attribute(events: pl.DataFrame, config: dict) -> pl.DataFrame:
    """One row per analysed user: variant and the per-user sums the checks need."""
    lo, hi = window(config)
    exposures = events.filter(
        (pl.col("event") == "exposure")
        & (pl.col("experiment_id") == config["id"])
        & pl.col("timestamp").is_between(lo, hi, closed="left")
    )
    first = (
        exposures.group_by("user_id")
        .agg(
            pl.col("timestamp").min().alias("first"),
            pl.col("variant").sort_by("timestamp").first(),
            pl.col("variant").n_unique().alias("n_variants"),
        )
        .filter(pl.col("n_variants") == 1)
    )
    ev = pl.col("event")
    nps_ts = pl.col("timestamp").filter(ev == "nps_response")
    per_user = (
        events.filter(ev != "exposure")
        .join(first, on="user_id")
        .filter(pl.col("timestamp").is_between(pl.col("first"), hi, closed="left"))
        .group_by("user_id")
        .agg(
            (ev == "order").sum().alias("orders"),
            pl.col("value").filter(ev == "order").sum().alias("revenue"),
            (ev == "contact").sum().alias("contacts"),
            ((ev == "contact") & (pl.col("channel") == "phone")).sum().alias("phone"),
            pl.col("value").filter(ev == "contact").sum().alias("minutes"),
            (ev == "delivery").sum().alias("deliveries"),
            pl.col("value").filter(ev == "delivery").sum().alias("on_time"),
            pl.col("value")
            .filter(ev == "nps_response")
            .sort_by(nps_ts)
            .last()
            .alias("nps"),
        )
    )
    counts = [
        "orders",
        "revenue",
        "contacts",
        "phone",
        "minutes",
        "deliveries",
        "on_time",
    ]
    return first.join(per_user, on="user_id", how="left").with_columns(
        pl.col(counts).fill_null(0).cast(pl.Float64),
        (pl.col("orders") > 0).cast(pl.Float64).fill_null(0).alias("converted"),
        (pl.col("contacts") > 0).cast(pl.Float64).fill_null(0).alias("contacted"),
        (pl.col("phone") > 0).cast(pl.Float64).fill_null(0).alias("phoned"),
        pl.when(pl.col("nps") >= 9)
        .then(100.0)
        .when(pl.col("nps") >= 7)
        .then(0.0)
        .when(pl.col("nps").is_not_null())
        .then(-100.0)
        .alias("nps_points"),
    )


def ratio_by_arm(users: pl.DataFrame, num: str, den: str | None) -> dict[str, tuple]:
    """Per arm: ratio of means num/den and its squared CV by the delta method."""
    x, y = pl.col(num), pl.col(den) if den else pl.lit(1.0)
    rows = (
        users.group_by("variant")
        .agg(
            pl.len().alias("n"),
            x.mean().alias("mx"),
            y.mean().alias("my"),
            x.var().alias("vx"),
            y.var().alias("vy"),
            pl.cov(x, y).alias("cxy") if den else pl.lit(0.0).alias("cxy"),
        )
        .fill_null(0.0)
        .iter_rows(named=True)
    )
    # Delta method: Var(mx/my)/(mx/my)^2 = (vx/mx^2 + vy/my^2 - 2 cxy/(mx my)) / n.
    return {
        r["variant"]: (
            r["mx"] / r["my"],
            (
                r["vx"] / r["mx"] ** 2
                + r["vy"] / r["my"] ** 2
                - 2 * r["cxy"] / (r["mx"] * r["my"])
            )
            / r["n"],
        )
        for r in rows
    }


def relative_effect(
    users: pl.DataFrame, treatment: str, num: str, den: str | None = None
) -> tuple[float, float]:
    """Relative lift treatment/control - 1 and its delta-method standard error."""
    arms = ratio_by_arm(users, num, den)
    (rc, cv2c), (rt, cv2t) = arms["control"], arms[treatment]
    return rt / rc - 1, rt / rc * math.sqrt(cv2c + cv2t)


def nps_effect(users: pl.DataFrame, treatment: str) -> tuple[float, float]:
    """NPS difference in points (last answer per responder) and its standard error."""
    stats = {
        r["variant"]: r
        for r in users.filter(pl.col("nps_points").is_not_null())
        .group_by("variant")
        .agg(
            pl.len().alias("n"),
            pl.col("nps_points").mean().alias("m"),
            pl.col("nps_points").var().alias("v"),
        )
        .iter_rows(named=True)
    }
    c, t = stats["control"], stats[treatment]
    se = math.sqrt(c["v"] / c["n"] + t["v"] / t["n"])
    return t["m"] - c["m"], se


def assert_recovered(
    estimate: tuple[float, float], target: float, *, detectable: bool = True
) -> None:
    value, se = estimate
    assert abs(value - target) < Z_TOLERANCE * se, (value, target, se)
    if detectable:
        assert abs(target) / se > MIN_Z_OF_EFFECT, (value, target, se)


# --- reproducibility and schema --------------------------------------------------


def test_same_seed_gives_the_same_frame() -> None:
    assert_frame_equal(generate_sample(3, 20_000), generate_sample(3, 20_000))


def test_different_seeds_give_different_frames() -> None:
    assert not generate_sample(3, 20_000).equals(generate_sample(4, 20_000))


def test_write_sample_replaces_the_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "data" / "events.parquet"
    assert write_sample(target, seed=3, n_users=5_000) == target
    write_sample(target, seed=3, n_users=5_000)
    assert [p.name for p in target.parent.iterdir()] == ["events.parquet"]
    assert_frame_equal(pl.read_parquet(target), generate_sample(3, 5_000))


def test_schema_and_dtypes_follow_the_contract(events: pl.DataFrame) -> None:
    assert dict(events.schema) == SCHEMA
    assert set(events["event"].unique()) == EVENTS
    assert events["timestamp"].is_sorted()
    assert events["timestamp"].min() >= LOG_START
    assert events["timestamp"].max() < LOG_START + dt.timedelta(days=LOG_DAYS)
    assert events["user_id"].str.contains(r"^u\d{6}$").all()
    required = events.select("timestamp", "user_id", "event", "platform", "country")
    assert required.null_count().sum_horizontal().item() == 0


def test_columns_are_filled_only_where_the_contract_says(events: pl.DataFrame) -> None:
    exposure = pl.col("event") == "exposure"
    valued = pl.col("event").is_in(["order", "delivery", "contact", "nps_response"])
    bad = events.filter(
        (exposure != pl.col("experiment_id").is_not_null())
        | (exposure != pl.col("variant").is_not_null())
        | (valued != pl.col("value").is_not_null())
        | ((pl.col("event") == "contact") != pl.col("channel").is_not_null())
        | (pl.col("reason").is_not_null() & (pl.col("event") != "contact"))
        | (pl.col("comment").is_not_null() & (pl.col("event") != "nps_response"))
    )
    assert bad.height == 0


def test_user_dimensions_are_constant_per_user(events: pl.DataFrame) -> None:
    per_user = events.group_by("user_id").agg(
        pl.col("platform", "country", "new_customer").n_unique()
    )
    assert per_user.select(pl.exclude("user_id").max()).row(0) == (1, 1, 1)
    assert set(events["platform"].unique()) == {"ios", "android", "web"}
    assert set(events["country"].unique()) == {"DE", "FR", "UK", "NL", "ES"}


def test_values_are_in_range(events: pl.DataFrame) -> None:
    def values(name: str) -> pl.Series:
        return events.filter(pl.col("event") == name)["value"]

    nps = values("nps_response")
    assert nps.is_between(0, 10).all()
    assert (nps == nps.round()).all()
    assert set(values("delivery").unique()) == {0.0, 1.0}
    assert 0.85 < values("delivery").mean() < 0.95
    assert (values("order") > 0).all()
    assert 50 < values("order").mean() < 70
    assert (values("contact") > 0).all()
    assert set(events["channel"].drop_nulls().unique()) == {"phone", "email", "chat"}


def test_log_looks_like_customer_experience_data(events: pl.DataFrame) -> None:
    n_users = 200_000
    users = events.group_by("event").agg(pl.col("user_id").n_unique())
    share = {e: n / n_users for e, n in users.iter_rows()}
    assert 0.10 < share["order"] < 0.13
    assert 0.06 < share["contact"] < 0.10
    assert 0.08 < share["nps_response"] < 0.11
    last = (
        events.filter(pl.col("event") == "nps_response")
        .group_by("user_id")
        .agg(pl.col("value").sort_by("timestamp").last())["value"]
    )
    nps = 100 * ((last >= 9).mean() - (last <= 6).mean())
    assert 30 <= nps <= 40


# --- experiments ------------------------------------------------------------------


def test_every_plan_has_a_yaml_with_the_same_window_and_variants(configs: dict) -> None:
    assert set(configs) == {plan.id for plan in PLANS}
    for plan in PLANS:
        config = configs[plan.id]
        assert config["id"] == plan.id
        assert config["start"] == plan.start
        assert config.get("end") == plan.end
        assert variant_ids(config) == [arm.id for arm in plan.arms]


def test_exposures_name_declared_experiments_and_variants(
    events: pl.DataFrame, configs: dict
) -> None:
    declared = pl.DataFrame(
        [(eid, v) for eid, c in configs.items() for v in variant_ids(c)],
        schema=["experiment_id", "variant"],
        orient="row",
    )
    exposures = events.filter(pl.col("event") == "exposure")
    undeclared = exposures.join(declared, on=["experiment_id", "variant"], how="anti")
    assert undeclared.height == 0


def test_engine_rules_are_exercised(events: pl.DataFrame, configs: dict) -> None:
    for config in configs.values():
        lo, hi = window(config)
        exposures = events.filter(
            (pl.col("event") == "exposure") & (pl.col("experiment_id") == config["id"])
        )
        outside = exposures.filter(
            ~pl.col("timestamp").is_between(lo, hi, closed="left")
        )
        assert 0 < outside.height <= 100
        inside = exposures.filter(pl.col("timestamp").is_between(lo, hi, closed="left"))
        variants = inside.group_by("user_id").agg(pl.col("variant").n_unique())[
            "variant"
        ]
        assert 0.001 < (variants > 1).mean() < 0.004  # ~0.2 % multiple exposures


def test_some_users_have_events_before_their_first_exposure(
    events: pl.DataFrame, configs: dict
) -> None:
    first = attribute(events, configs["help-centre-redesign"]).select(
        "user_id", "first"
    )
    before = (
        events.filter(pl.col("event").is_in(["order", "contact"]))
        .join(first, on="user_id")
        .filter(pl.col("timestamp") < pl.col("first"))
    )
    assert before["user_id"].n_unique() > 1_000


def test_proactive_email_cuts_contacts_per_order_and_lifts_nps(
    events: pl.DataFrame, configs: dict
) -> None:
    users = attribute(events, configs["proactive-shipping-email"])
    assert users.height > 120_000
    contacts_per_order = relative_effect(users, "proactive_email", "contacts", "orders")
    assert contacts_per_order[0] == pytest.approx(-0.12, abs=0.04)
    assert_recovered(contacts_per_order, -0.12)
    assert_recovered(nps_effect(users, "proactive_email"), 4.0)
    assert_recovered(
        relative_effect(users, "proactive_email", "revenue"), 0.0, detectable=False
    )


def test_help_centre_cuts_contact_rate(events: pl.DataFrame, configs: dict) -> None:
    users = attribute(events, configs["help-centre-redesign"])
    assert_recovered(relative_effect(users, "new_help_centre", "contacted"), -0.08)
    assert_recovered(nps_effect(users, "new_help_centre"), 2.0, detectable=False)


def test_delivery_date_promise_lifts_conversion_and_keeps_the_promise(
    events: pl.DataFrame, configs: dict
) -> None:
    users = attribute(events, configs["delivery-date-promise"])
    assert users.height > 120_000
    assert_recovered(relative_effect(users, "date_promise", "converted"), 0.03)
    kept = relative_effect(users, "date_promise", "on_time", "deliveries")
    assert_recovered(kept, 0.0, detectable=False)
    assert abs(kept[0]) < 0.02


def test_click_to_call_lifts_nps_but_breaks_the_contact_guardrail(
    events: pl.DataFrame, configs: dict
) -> None:
    users = attribute(events, configs["click-to-call"])
    assert_recovered(nps_effect(users, "click_to_call"), 5.0)
    contact_rate = relative_effect(users, "click_to_call", "contacted")
    assert_recovered(contact_rate, 0.06, detectable=False)
    assert contact_rate[0] > 0
    assert relative_effect(users, "click_to_call", "phoned")[0] > 0.25


def test_free_shipping_thresholds_trade_conversion_for_basket_size(
    events: pl.DataFrame, configs: dict
) -> None:
    users = attribute(events, configs["free-shipping-threshold"])
    # Three arms of ~40k users: each effect is checked against its design within
    # 3 standard errors, not for significance.
    conv_25 = relative_effect(users, "threshold_25", "converted")
    conv_35 = relative_effect(users, "threshold_35", "converted")
    assert_recovered(conv_25, 0.06, detectable=False)
    assert_recovered(conv_35, 0.04, detectable=False)
    revenue_25 = relative_effect(users, "threshold_25", "revenue")
    revenue_35 = relative_effect(users, "threshold_35", "revenue")
    assert_recovered(revenue_25, 0.0, detectable=False)
    assert_recovered(revenue_35, 0.04, detectable=False)
    # threshold_25 trades basket size for conversion: its revenue lags its conversion.
    gap = (conv_25[0] - revenue_25[0], math.hypot(conv_25[1], revenue_25[1]))
    assert_recovered(gap, 0.06, detectable=False)


def test_aa_test_shows_no_difference(events: pl.DataFrame, configs: dict) -> None:
    users = attribute(events, configs["checkout-aa-test"])
    for num, den in [("converted", None), ("revenue", None), ("contacted", None)]:
        assert_recovered(
            relative_effect(users, "control_copy", num, den), 0.0, detectable=False
        )
    assert_recovered(nps_effect(users, "control_copy"), 0.0, detectable=False)
    counts = dict(users.group_by("variant").len().iter_rows())
    assert abs(counts["control"] - counts["control_copy"]) < 3 * math.sqrt(users.height)


def test_carousel_has_a_sample_ratio_mismatch(
    events: pl.DataFrame, configs: dict
) -> None:
    users = attribute(events, configs["recommendations-carousel"])
    counts = dict(users.group_by("variant").len().iter_rows())
    n = counts["control"] + counts["carousel"]
    assert counts["control"] / n == pytest.approx(0.52, abs=0.005)
    # Chi-square with 1 df against 50/50: p = erfc(sqrt(chi2 / 2)).
    chi2 = (counts["control"] - counts["carousel"]) ** 2 / n
    assert math.erfc(math.sqrt(chi2 / 2)) < 0.001


def test_returns_portal_chat_is_running(events: pl.DataFrame, configs: dict) -> None:
    config = configs["returns-portal-chat"]
    assert config["status"] == "running"
    assert "end" not in config
    assert config["planned_users"] > 0
    users = attribute(events, config)
    assert 0 < users.height < config["planned_users"]
    assert_recovered(relative_effect(users, "returns_chat", "phoned"), -0.2)


# --- the customer's voice: reasons, resolutions, comments ---------------------------


def test_contacts_carry_reasons_and_most_are_resolved_later(
    events: pl.DataFrame,
) -> None:
    contacts = events.filter(pl.col("event") == "contact")
    reasons = contacts["reason"].drop_nulls().unique().sort().to_list()
    assert reasons == sorted(REASONS)
    assert 0.01 < contacts["reason"].null_count() / contacts.height < 0.03
    resolved = events.filter(pl.col("event") == "contact_resolved")
    assert (
        0.85 < resolved.height / contacts.height < 0.97
    )  # some still open, a few never


def test_nps_comments_follow_the_score_band(events: pl.DataFrame) -> None:
    answers = events.filter(pl.col("event") == "nps_response")
    commented = answers.filter(pl.col("comment").is_not_null())
    assert 0.5 < commented.height / answers.height < 0.6
    band = dict.fromkeys(PROMOTER_COMMENTS, "promoter")
    band |= dict.fromkeys(PASSIVE_COMMENTS, "passive")
    band |= dict.fromkeys(DETRACTOR_COMMENTS, "detractor")
    expected = (
        pl.when(pl.col("value") >= 9)
        .then(pl.lit("promoter"))
        .when(pl.col("value") >= 7)
        .then(pl.lit("passive"))
        .otherwise(pl.lit("detractor"))
    )
    wrong = commented.filter(pl.col("comment").replace_strict(band) != expected)
    assert wrong.height == 0


def reason_counts(events: pl.DataFrame, users: pl.DataFrame, config: dict) -> dict:
    """Per user (0 without): their contacts of each reason in the experiment."""
    _, hi = window(config)
    per_user = (
        events.filter(pl.col("event") == "contact")
        .join(users.select("user_id", "first"), on="user_id")
        .filter(pl.col("timestamp").is_between(pl.col("first"), hi, closed="left"))
        .group_by("user_id")
        .agg((pl.col("reason") == r).sum().alias(r) for r in REASONS)
    )
    return (
        users.select("user_id", "variant")
        .join(per_user, on="user_id", how="left")
        .with_columns(pl.col(REASONS).fill_null(0).cast(pl.Float64))
    )


def test_proactive_email_cuts_where_is_my_order_but_not_damaged_items(
    events: pl.DataFrame, configs: dict
) -> None:
    config = configs["proactive-shipping-email"]
    users = reason_counts(events, attribute(events, config), config)
    wismo = relative_effect(users, "proactive_email", "where is my order")
    assert_recovered(wismo, -0.45)
    assert_recovered(
        relative_effect(users, "proactive_email", "damaged item"), 0.0, detectable=False
    )


def test_help_centre_shortens_resolution(events: pl.DataFrame, configs: dict) -> None:
    """Median hours from a user's first contact to the next resolution, resolved only:
    the injected x0.8 on every delay shows in the ratio of the medians."""
    config = configs["help-centre-redesign"]
    users = attribute(events, config)
    _, hi = window(config)
    ev = pl.col("event")
    times = (
        events.filter(ev.is_in(["contact", "contact_resolved"]))
        .drop("variant")
        .join(users.select("user_id", "variant", "first"), on="user_id")
        .filter(pl.col("timestamp").is_between(pl.col("first"), hi, closed="left"))
        .sort("timestamp")
        .group_by("user_id", "variant")
        .agg(
            pl.col("timestamp").filter(ev == "contact").first().alias("start"),
            pl.col("timestamp").filter(ev == "contact_resolved").alias("ends"),
        )
        .drop_nulls("start")
        .explode("ends")
        .filter(pl.col("ends") >= pl.col("start"))
        .group_by("user_id", "variant")
        .agg(
            (
                (pl.col("ends").min() - pl.col("start").first()).dt.total_seconds()
                / 3600
            ).alias("hours")
        )
    )
    medians = dict(times.group_by("variant").agg(pl.col("hours").median()).iter_rows())
    assert medians["new_help_centre"] / medians["control"] == pytest.approx(
        0.8, abs=0.08
    )
