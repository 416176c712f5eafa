"""Seeded generator of the bundled sample event log (CONTRACT §1).

The log covers eight weeks, 2026-09-01 to 2026-10-26 (UTC), of a web shop's customer
experience: users arrive over time, get exposed to the experiments running when they
visit, order (heavy-tailed revenue), receive deliveries (about 90 % on time), contact
customer service (more often after a late delivery, for a reason: where is my order,
a return, a damaged item, billing or another), have their contact resolved hours or
days later (some are still open when the log ends, a few never) and answer NPS surveys,
some with a comment written from a few phrases per score band.

Every experiment in ``experiments/`` has a known, injected effect, kept here in
:data:`PLANS` (the YAML files state the same effects in their hypotheses). Effects act
on a user's events between their first exposure and the experiment's end, and they are
multiplicative on rates (orders, contacts), order value, phone share and minutes to
resolution, and additive on NPS points, so each stays recoverable although users take
part in several experiments at once. Rates are changed by thinning: candidate events are
drawn at the highest possible rate and each is kept with probability
``multiplier / highest multiplier``.

Everything is vectorised with numpy; the only Python loops run over experiments and
arms. The same seed gives the same frame, row for row.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

DEFAULT_SEED = 7
DEFAULT_USERS = 200_000
DEFAULT_PATH = Path("data/events.parquet")

LOG_START = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
LOG_DAYS = 56  # 2026-09-01 .. 2026-10-26 inclusive
DAY = 86_400.0
LOG_END_S = LOG_DAYS * DAY  # seconds after LOG_START, exclusive

EVENTS = (
    "exposure",
    "page_view",
    "order",
    "delivery",
    "contact",
    "nps_response",
    "contact_resolved",
)
PLATFORMS = ("ios", "android", "web")
PLATFORM_P = (0.36, 0.34, 0.30)
COUNTRIES = ("DE", "FR", "UK", "NL", "ES")
COUNTRY_P = (0.34, 0.20, 0.20, 0.11, 0.15)
ON_TIME_P = (0.93, 0.89, 0.90, 0.93, 0.85)  # per country, same order as COUNTRIES
CHANNELS = ("phone", "email", "chat")
CHANNEL_P = (0.35, 0.25, 0.40)  # phone, email, chat
MEDIAN_MINUTES = (9.0, 150.0, 14.0)  # to resolution, per channel
SIGMA_MINUTES = (0.5, 0.5, 0.5)
NEW_CUSTOMER_P = 0.42
# Contact reasons (column `reason` on contact rows), mixes by what prompted the contact.
REASONS = ("where is my order", "return", "damaged item", "billing", "other")
REASON_MIX_ON_TIME = (0.25, 0.30, 0.15, 0.15, 0.15)  # after an on-time delivery
REASON_MIX_LATE = (0.60, 0.10, 0.12, 0.08, 0.10)  # after a late delivery
REASON_MIX_OWN = (0.20, 0.20, 0.05, 0.25, 0.30)  # unprompted
NO_REASON_P = 0.02  # contacts logged without a reason
# Resolution (`contact_resolved` rows): hours after the contact, lognormal per channel.
MEDIAN_RESOLUTION_HOURS = (3.0, 26.0, 6.0)  # phone, email, chat
SIGMA_RESOLUTION = 1.0
LATE_RESOLUTION = 1.25  # contacts after a late delivery take longer
NEVER_RESOLVED_P = 0.04
# NPS comments (column `comment` on nps_response rows), per score band.
COMMENT_P = 0.55
PROMOTER_COMMENTS = (
    "Fast delivery, great service",
    "Easy to order and the parcel came on time",
    "Friendly and helpful support",
    "Love the selection",
)
PASSIVE_COMMENTS = (
    "Fine overall",
    "Delivery was ok but took a while",
    "Good prices, the app could be faster",
    "Support was ok",
)
DETRACTOR_COMMENTS = (
    "Parcel was late",
    "No tracking updates for days",
    "Item arrived damaged",
    "Refund took far too long",
    "Nobody answered my e-mail",
)
DETRACTOR_COMMENT_P = (0.2, 0.2, 0.2, 0.2, 0.2)
# Detractors in the shipping e-mail's control arm mostly write "late" and "tracking".
SHIPPING_CONTROL_COMMENT_P = (0.35, 0.35, 0.1, 0.1, 0.1)
COMMENTS = PROMOTER_COMMENTS + PASSIVE_COMMENTS + DETRACTOR_COMMENTS

# Orders. New customers order in a burst after arriving; existing (regular) customers
# order steadily until the end of the log, a few of them often, which gives the
# pre-exposure history CUPED feeds on. Expected orders ~ Gamma(shape, mean / shape).
NEW_ORDER_SHAPE = 0.35
NEW_ORDER_MEAN = 0.14  # expected orders after arriving
REGULAR_ORDER_SHAPE = 0.12
REGULAR_ORDER_MEAN = 0.30  # expected orders over the whole eight weeks
IN_SESSION_P = 0.30  # share of new customers' orders placed minutes after arriving
ORDER_DELAY_MEAN = 12 * DAY
REGULAR_ARRIVAL_DECAY = 10.0  # days: regulars mostly show up in the first weeks
REVENUE_MU = float(np.log(60.0) - 0.75**2 / 2)  # lognormal with mean EUR 60
REVENUE_SIGMA = 0.75
# Contacts: after an order (more after a late delivery) and unprompted.
ORDER_CONTACT_P = (0.12, 0.50)  # on time, late
OWN_CONTACT_SHAPE = 0.5
OWN_CONTACT_MEAN = 0.085  # expected over the log (regulars) or after arriving (new)
OWN_CONTACT_DELAY_MEAN = 10 * DAY
# NPS surveys after a delivery and after a contact; (promoter, passive, detractor).
NPS_AFTER_DELIVERY_P = 0.60
NPS_AFTER_CONTACT_P = 0.35
NPS_MIX_ON_TIME = (0.57, 0.28, 0.15)
NPS_MIX_LATE = (0.25, 0.30, 0.45)
NPS_MIX_CONTACT = (0.45, 0.25, 0.30)
DETRACTOR_SCORES_P = (0.04, 0.02, 0.04, 0.06, 0.10, 0.28, 0.46)  # scores 0..6
# Exposure of users who arrived before an experiment started and come back: new
# customers less and less often, regulars often (more often the more they buy).
RETURN_P = 0.40
RETURN_DECAY = 21 * DAY
REGULAR_RETURN_P = 0.70
RETURN_DELAY_MEAN = 5 * DAY
REPEAT_EXPOSURE_P = 0.05  # same variant seen again later: the engine keeps the first
MULTIPLE_EXPOSURE_P = 0.002  # shown the other arm too: the engine excludes the user
OUT_OF_WINDOW_ROWS = 40  # exposure rows outside the window: the engine ignores them
PAGE_VIEWS_PER_USER = 0.6
ARM_SLOTS = 8  # at most this many arms per experiment (variant codes are packed)
HOURLY_TRAFFIC = (1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4)  # 00:00-11:00 UTC
HOURLY_TRAFFIC += (4.5, 4.5, 4, 4, 4, 4.5, 5, 5.5, 5.5, 5, 3.5, 2)  # 12:00-23:00 UTC


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant of a planned experiment and its injected effects.

    Attributes:
        id: Variant id, as in the experiment's YAML.
        assign_p: Share of exposed users actually assigned to the arm (differs from
            the configured weight only for the sample-ratio-mismatch experiment).
        order: Multiplier on the order rate.
        aov: Multiplier on the value of each order.
        contact: Multiplier on the contact rate.
        phone: Multiplier on the probability that a contact is a phone call.
        minutes: Multiplier on minutes to resolution.
        nps: NPS points added (promoters taken from detractors).
        contact_reason: The contact effect falls on this reason only (the other
            reasons keep their rates); empty: on every reason alike.
        resolution: Multiplier on the hours from a contact to its resolution.
    """

    id: str
    assign_p: float
    order: float = 1.0
    aov: float = 1.0
    contact: float = 1.0
    phone: float = 1.0
    minutes: float = 1.0
    nps: float = 0.0
    contact_reason: str = ""
    resolution: float = 1.0


@dataclass(frozen=True, slots=True)
class Plan:
    """An experiment as the generator runs it.

    Attributes:
        id: Experiment id (file ``experiments/<id>.yaml``).
        start: First day of the window (UTC).
        end: Last day of the window, inclusive; ``None`` while running.
        arms: The variants, control first.
        allocation: Share of eligible visitors that enter the experiment.
    """

    id: str
    start: dt.date
    end: dt.date | None
    arms: tuple[Arm, ...]
    allocation: float = 1.0

    @property
    def start_s(self) -> float:
        """Window start in seconds after :data:`LOG_START`."""
        return (self.start - LOG_START.date()).days * DAY

    @property
    def end_s(self) -> float:
        """Window end (exclusive) in seconds after :data:`LOG_START`."""
        if self.end is None:
            return LOG_END_S
        return min((self.end - LOG_START.date()).days * DAY + DAY, LOG_END_S)


def _ab(treatment: str, **effects: float) -> tuple[Arm, ...]:
    return (Arm("control", 0.5), Arm(treatment, 0.5, **effects))


PLANS: tuple[Plan, ...] = (
    Plan(
        "proactive-shipping-email",
        dt.date(2026, 9, 7),
        dt.date(2026, 10, 18),
        _ab("proactive_email", contact=0.88, nps=4.0, contact_reason=REASONS[0]),
    ),
    Plan(
        "help-centre-redesign",
        dt.date(2026, 9, 14),
        dt.date(2026, 10, 18),
        _ab("new_help_centre", contact=0.92, nps=2.0, resolution=0.8),
    ),
    Plan(
        "delivery-date-promise",
        dt.date(2026, 9, 1),
        dt.date(2026, 10, 25),
        _ab("date_promise", order=1.045),
    ),
    Plan(
        "click-to-call",
        dt.date(2026, 9, 14),
        dt.date(2026, 10, 18),
        _ab("click_to_call", contact=1.07, phone=1.35, nps=5.0),
    ),
    Plan(
        "free-shipping-threshold",
        dt.date(2026, 9, 28),
        dt.date(2026, 10, 25),
        (
            Arm("control", 1 / 3),
            Arm("threshold_25", 1 / 3, order=1.09, aov=0.92),
            Arm("threshold_35", 1 / 3, order=1.055, aov=0.99),
        ),
    ),
    Plan(
        "checkout-aa-test",
        dt.date(2026, 9, 1),
        dt.date(2026, 9, 27),
        (Arm("control", 0.5), Arm("control_copy", 0.5)),
    ),
    Plan(
        "recommendations-carousel",
        dt.date(2026, 10, 1),
        dt.date(2026, 10, 25),
        (Arm("control", 0.52), Arm("carousel", 0.48, aov=1.03)),
    ),
    Plan(
        "returns-portal-chat",
        dt.date(2026, 10, 12),
        None,
        _ab("returns_chat", phone=0.8, minutes=0.9),
        allocation=0.8,
    ),
)


@dataclass(slots=True)
class _Exposure:
    """Per-user first exposure of one experiment: time (inf if none) and arm (-1)."""

    time: np.ndarray
    arm: np.ndarray


@dataclass(slots=True)
class _Rows:
    """Columns of generated rows, concatenated at the end."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(
        self, event: str, user: np.ndarray, t: np.ndarray, **cols: np.ndarray
    ) -> None:
        n = len(user)
        full = {
            "event": np.full(n, EVENTS.index(event), dtype=np.int8),
            "user": user.astype(np.int64),
            "t": t.astype(np.float64),
            "value": cols.get("value", np.full(n, np.nan)),
            "experiment": cols.get("experiment", np.full(n, -1, dtype=np.int8)),
            "variant": cols.get("variant", np.full(n, -1, dtype=np.int8)),
            "channel": cols.get("channel", np.full(n, -1, dtype=np.int8)),
            "reason": cols.get("reason", np.full(n, -1, dtype=np.int8)),
            "comment": cols.get("comment", np.full(n, -1, dtype=np.int8)),
        }
        for name, arr in full.items():
            self.parts.setdefault(name, []).append(arr)

    def concat(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(arrs) for name, arrs in self.parts.items()}


def _arrivals(rng: np.random.Generator, regular: np.ndarray) -> np.ndarray:
    """First visits in seconds after LOG_START: busy weekends and evenings.

    New customers arrive evenly (with slow growth); regulars mostly in the first weeks.
    """
    n = len(regular)
    days = np.arange(LOG_DAYS)
    weekday = (LOG_START.weekday() + days) % 7
    weekly = np.where(weekday >= 5, 1.15, 1.0)
    new_w = (1 + 0.004 * days) * weekly
    regular_w = (np.exp(-days / REGULAR_ARRIVAL_DECAY) + 0.05) * weekly
    day = np.where(
        regular,
        rng.choice(LOG_DAYS, size=n, p=regular_w / regular_w.sum()),
        rng.choice(LOG_DAYS, size=n, p=new_w / new_w.sum()),
    )
    hours = np.asarray(HOURLY_TRAFFIC)
    hour = rng.choice(24, size=n, p=hours / hours.sum())
    return day * DAY + hour * 3600.0 + rng.uniform(0, 3600.0, n)


def _delays(
    rng: np.random.Generator,
    regular: np.ndarray,
    arrival: np.ndarray,
    *,
    in_session: bool,
) -> np.ndarray:
    """Seconds from arrival to each event of regulars or new customers.

    Regulars' events fall uniformly until the end of the log; new customers' come in a
    burst: exponential delays, some (orders) within the arrival session.
    """
    k = len(regular)
    steady = rng.uniform(0.0, 1.0, k) * (LOG_END_S - arrival)
    mean = ORDER_DELAY_MEAN if in_session else OWN_CONTACT_DELAY_MEAN
    burst = rng.exponential(mean, k)
    if in_session:
        burst = np.where(
            rng.random(k) < IN_SESSION_P, rng.uniform(60.0, 2400.0, k), burst
        )
    return np.where(regular, steady, burst)


def _expose(
    rng: np.random.Generator, plan: Plan, arrival: np.ndarray, p_return: np.ndarray
) -> _Exposure:
    """First exposures of one experiment.

    Users arriving inside the window are exposed on arrival. A user who arrived
    before it comes back (and is exposed) with probability ``p_return`` (regulars)
    or ``RETURN_P`` decaying with the time since arrival (new customers: NaN there).
    """
    n = len(arrival)
    start, end = plan.start_s, plan.end_s
    new = (arrival >= start) & (arrival < end) & (rng.random(n) < plan.allocation)
    gap = start - arrival
    decayed = RETURN_P * np.exp(-np.maximum(gap, 0) / RETURN_DECAY)
    p_back = np.where(np.isnan(p_return), decayed, p_return)
    p_back = np.where(gap > 0, p_back, 0.0)
    back_time = start + rng.exponential(RETURN_DELAY_MEAN, n)
    back = (rng.random(n) < p_back * plan.allocation) & (back_time < end)
    time = np.full(n, np.inf)
    time = np.where(new, arrival + rng.uniform(1.0, 30.0, n), time)
    time = np.where(back, back_time, time)
    time = np.where(new | back, np.minimum(time, end - 1.0), np.inf)
    assign = np.array([arm.assign_p for arm in plan.arms])
    arm = rng.choice(len(plan.arms), size=n, p=assign / assign.sum()).astype(np.int8)
    arm = np.where(np.isfinite(time), arm, -1).astype(np.int8)
    return _Exposure(time, arm)


def _exposure_rows(
    rng: np.random.Generator,
    rows: _Rows,
    code: int,
    plan: Plan,
    exposure: _Exposure,
    arrival: np.ndarray,
) -> None:
    """Exposure rows: first, repeated, multiple-variant and out-of-window ones."""
    users = np.flatnonzero(exposure.arm >= 0)
    first = exposure.time[users]
    arm = exposure.arm[users]
    n, k = len(users), len(plan.arms)
    code_of = np.full(n, code, dtype=np.int8)
    rows.add("exposure", users, first, experiment=code_of, variant=arm)
    # The same variant seen again on a later visit.
    later = np.minimum(first + rng.exponential(3 * DAY, n), plan.end_s - 1.0)
    again = rng.random(n) < REPEAT_EXPOSURE_P
    rows.add(
        "exposure",
        users[again],
        later[again],
        experiment=code_of[again],
        variant=arm[again],
    )
    # A few users are also shown another arm (a caching bug): the engine excludes them.
    other = ((arm + rng.integers(1, k, n)) % k).astype(np.int8)
    twice = rng.random(n) < MULTIPLE_EXPOSURE_P
    when = first + (later - first) * rng.uniform(0.2, 1.0, n)
    rows.add(
        "exposure",
        users[twice],
        when[twice],
        experiment=code_of[twice],
        variant=other[twice],
    )
    # Exposure rows outside the window: QA traffic before the start or stale clients
    # after the end. The engine ignores them.
    if plan.start_s >= 3 * DAY:
        pool = np.flatnonzero(arrival < plan.start_s - 2 * DAY)
        stray = rng.choice(pool, size=OUT_OF_WINDOW_ROWS, replace=False)
        t = plan.start_s - rng.uniform(60.0, 2 * DAY, OUT_OF_WINDOW_ROWS)
        variant = rng.integers(0, k, OUT_OF_WINDOW_ROWS).astype(np.int8)
    else:
        pick = rng.choice(n, size=OUT_OF_WINDOW_ROWS, replace=False)
        stray, variant = users[pick], arm[pick]
        t = plan.end_s + rng.uniform(
            60.0, min(2 * DAY, LOG_END_S - plan.end_s), OUT_OF_WINDOW_ROWS
        )
    rows.add(
        "exposure",
        stray,
        t,
        experiment=np.full(OUT_OF_WINDOW_ROWS, code, dtype=np.int8),
        variant=variant,
    )


def _effect(
    users: np.ndarray,
    t: np.ndarray,
    kind: str,
    exposures: Sequence[_Exposure],
    *,
    additive: bool = False,
) -> np.ndarray:
    """Combined effect of all experiments on events of ``users`` at times ``t``."""
    out = np.full(len(users), 0.0 if additive else 1.0)
    for plan, exposure in zip(PLANS, exposures, strict=True):
        active = (exposure.time[users] <= t) & (t < plan.end_s)
        arm = exposure.arm[users]
        for index, spec in enumerate(plan.arms):
            effect = getattr(spec, kind)
            if effect == (0.0 if additive else 1.0):
                continue
            hit = active & (arm == index)
            out = (
                np.where(hit, out + effect, out)
                if additive
                else np.where(hit, out * effect, out)
            )
    return out


def _arm_active(
    users: np.ndarray,
    t: np.ndarray,
    exposures: Sequence[_Exposure],
    plan: int,
    arm: int,
) -> np.ndarray:
    """Whether each event falls in the given experiment arm's active window."""
    exposure = exposures[plan]
    return (
        (exposure.arm[users] == arm)
        & (exposure.time[users] <= t)
        & (t < PLANS[plan].end_s)
    )


def _reasons(
    rng: np.random.Generator,
    users: np.ndarray,
    t: np.ndarray,
    mix: np.ndarray,
    exposures: Sequence[_Exposure],
) -> np.ndarray:
    """A reason per contact (-1: none logged), from its mix and the arms in force.

    An arm whose contact effect m falls on one reason takes (1 - m) of the base
    contact rate from that reason alone; the mix is then renormalised, so the
    other reasons keep their rates under thinning by m.
    """
    weights = mix.copy()
    for p, plan in enumerate(PLANS):
        for a, spec in enumerate(plan.arms):
            if spec.contact_reason:
                hit = _arm_active(users, t, exposures, p, a)
                r = REASONS.index(spec.contact_reason)
                weights[hit, r] -= 1.0 - spec.contact
    weights /= weights.sum(axis=1, keepdims=True)
    draw = rng.random(len(users))
    reason = (draw[:, None] > weights.cumsum(axis=1)).sum(axis=1)
    reason = np.minimum(reason, len(REASONS) - 1)
    return np.where(rng.random(len(users)) < NO_REASON_P, -1, reason).astype(np.int8)


def _comments(
    rng: np.random.Generator,
    users: np.ndarray,
    t: np.ndarray,
    score: np.ndarray,
    exposures: Sequence[_Exposure],
) -> np.ndarray:
    """A comment code per NPS answer (-1: none), from its score band's phrases."""
    r = len(users)
    shipping = [p.id for p in PLANS].index("proactive-shipping-email")
    in_control = _arm_active(users, t, exposures, shipping, 0)
    detractor = np.where(
        in_control,
        rng.choice(len(DETRACTOR_COMMENTS), size=r, p=SHIPPING_CONTROL_COMMENT_P),
        rng.choice(len(DETRACTOR_COMMENTS), size=r, p=DETRACTOR_COMMENT_P),
    )
    offset = len(PROMOTER_COMMENTS) + len(PASSIVE_COMMENTS)
    code = np.where(
        score >= 9,
        rng.integers(0, len(PROMOTER_COMMENTS), r),
        np.where(
            score >= 7,
            len(PROMOTER_COMMENTS) + rng.integers(0, len(PASSIVE_COMMENTS), r),
            offset + detractor,
        ),
    )
    return np.where(rng.random(r) < COMMENT_P, code, -1).astype(np.int8)


def _max_effect(kind: str) -> float:
    """Largest possible combined multiplier of ``kind`` (for thinning)."""
    return float(np.prod([max(getattr(a, kind) for a in p.arms) for p in PLANS]))


def generate_sample(
    seed: int = DEFAULT_SEED, n_users: int = DEFAULT_USERS
) -> pl.DataFrame:
    """Generate the sample event log.

    Args:
        seed: Seed of the random generator; the same seed gives the same frame.
        n_users: Number of users arriving over the eight weeks.

    Returns:
        The event log, one row per event, sorted by timestamp, with the columns of
        CONTRACT §1 (``timestamp``, ``user_id``, ``event``, ``experiment_id``,
        ``variant``, ``value``) and the dimensions ``platform``, ``country``,
        ``channel`` and ``reason`` (contacts only), ``new_customer``, and the
        free-text ``comment`` of some NPS answers.
    """
    # Independent streams per part, so that editing one experiment's plan leaves the
    # other experiments' draws (and the users) unchanged.
    seeds = np.random.SeedSequence(seed).spawn(6 + len(PLANS) + 3)
    users_rng, views_rng, orders_rng, deliveries_rng, contacts_rng, nps_rng = (
        np.random.default_rng(s) for s in seeds[:6]
    )
    # Streams added later come last, so the earlier streams' draws are unchanged.
    reasons_rng, resolution_rng, comments_rng = (
        np.random.default_rng(s) for s in seeds[6 + len(PLANS) :]
    )
    n = n_users
    rows = _Rows()

    # Users.
    platform = users_rng.choice(len(PLATFORMS), size=n, p=PLATFORM_P)
    country = users_rng.choice(len(COUNTRIES), size=n, p=COUNTRY_P)
    new_customer = users_rng.random(n) < NEW_CUSTOMER_P
    regular = ~new_customer
    arrival = _arrivals(users_rng, regular)
    propensity = np.where(
        regular,
        users_rng.gamma(
            REGULAR_ORDER_SHAPE, REGULAR_ORDER_MEAN / REGULAR_ORDER_SHAPE, n
        ),
        users_rng.gamma(NEW_ORDER_SHAPE, NEW_ORDER_MEAN / NEW_ORDER_SHAPE, n),
    )
    # Regulars who buy more visit more: return probability 0.6x..1.3x the base.
    activity = np.minimum(0.6 + 0.4 * propensity / REGULAR_ORDER_MEAN, 1.3)
    p_return = np.where(regular, REGULAR_RETURN_P * activity, np.nan)
    # A regular's expected events scale with the share of the log after arrival.
    remaining = (LOG_END_S - arrival) / LOG_END_S

    # Exposures.
    exposures: list[_Exposure] = []
    for code, plan in enumerate(PLANS):
        plan_rng = np.random.default_rng(seeds[6 + code])
        exposure = _expose(plan_rng, plan, arrival, p_return)
        exposures.append(exposure)
        _exposure_rows(plan_rng, rows, code, plan, exposure, arrival)

    # Page views.
    views = views_rng.poisson(PAGE_VIEWS_PER_USER, n)
    user = np.repeat(np.arange(n), views)
    t = arrival[user] + views_rng.exponential(5 * DAY, len(user))
    keep = t < LOG_END_S
    rows.add("page_view", user[keep], t[keep])

    # Orders, thinned by the experiments' order-rate effects.
    top = _max_effect("order")
    expected = np.where(regular, propensity * remaining, propensity)
    user = np.repeat(np.arange(n), orders_rng.poisson(expected * top))
    t = arrival[user] + _delays(
        orders_rng, regular[user], arrival[user], in_session=True
    )
    m = len(user)
    keep = (t < LOG_END_S) & (
        orders_rng.random(m) * top < _effect(user, t, "order", exposures)
    )
    user, t = user[keep], t[keep]
    order_t, order_user = t, user
    m = len(user)
    revenue = orders_rng.lognormal(REVENUE_MU, REVENUE_SIGMA, m) * _effect(
        user, t, "aov", exposures
    )
    rows.add("order", user, t, value=np.round(revenue, 2))

    # Deliveries, a few days after each order.
    delivery_t = order_t + DAY * (1.0 + deliveries_rng.gamma(2.0, 0.6, m))
    on_time = deliveries_rng.random(m) < np.asarray(ON_TIME_P)[country[order_user]]
    keep = delivery_t < LOG_END_S
    rows.add(
        "delivery",
        order_user[keep],
        delivery_t[keep],
        value=on_time[keep].astype(np.float64),
    )

    # Contacts: after an order (more after a late delivery) and unprompted.
    top = _max_effect("contact")
    after_order = contacts_rng.random(m) < np.where(on_time, *ORDER_CONTACT_P) * top
    own = contacts_rng.gamma(OWN_CONTACT_SHAPE, OWN_CONTACT_MEAN / OWN_CONTACT_SHAPE, n)
    own = np.where(regular, own * remaining, own)
    own_user = np.repeat(np.arange(n), contacts_rng.poisson(own * top))
    user = np.concatenate([order_user[after_order], own_user])
    t = np.concatenate(
        [
            order_t[after_order]
            + DAY * contacts_rng.uniform(1.0, 6.0, int(after_order.sum())),
            arrival[own_user]
            + _delays(
                contacts_rng, regular[own_user], arrival[own_user], in_session=False
            ),
        ]
    )
    late = np.concatenate([~on_time[after_order], np.zeros(len(own_user), dtype=bool)])
    mix = np.concatenate(
        [
            np.where(on_time[after_order, None], REASON_MIX_ON_TIME, REASON_MIX_LATE),
            np.tile(REASON_MIX_OWN, (len(own_user), 1)),
        ]
    )
    c = len(user)
    keep = (t < LOG_END_S) & (
        contacts_rng.random(c) * top < _effect(user, t, "contact", exposures)
    )
    user, t, late, mix = user[keep], t[keep], late[keep], mix[keep]
    c = len(user)
    # The phone effect moves contacts between phone and chat; e-mail keeps its share.
    p_phone = np.minimum(CHANNEL_P[0] * _effect(user, t, "phone", exposures), 0.7)
    p_email = CHANNEL_P[1]
    draw = contacts_rng.random(c)
    channel = np.where(draw < p_phone, 0, np.where(draw < p_phone + p_email, 1, 2))
    median, sigma = (
        np.asarray(MEDIAN_MINUTES)[channel],
        np.asarray(SIGMA_MINUTES)[channel],
    )
    minutes = contacts_rng.lognormal(np.log(median), sigma)
    minutes *= np.where(late, 1.3, 1.0) * _effect(user, t, "minutes", exposures)
    rows.add(
        "contact",
        user,
        t,
        value=np.round(minutes, 1),
        channel=channel.astype(np.int8),
        reason=_reasons(reasons_rng, user, t, mix, exposures),
    )
    contact_t, contact_user = t, user

    # Resolutions, hours or days later; some still open at the end, a few never.
    hours = resolution_rng.lognormal(
        np.log(np.asarray(MEDIAN_RESOLUTION_HOURS)[channel]), SIGMA_RESOLUTION
    )
    hours *= np.where(late, LATE_RESOLUTION, 1.0)
    hours *= _effect(user, t, "resolution", exposures)
    resolved_t = t + hours * 3600.0
    keep = (resolved_t < LOG_END_S) & (resolution_rng.random(c) >= NEVER_RESOLVED_P)
    rows.add("contact_resolved", user[keep], resolved_t[keep])

    # NPS responses after deliveries and contacts.
    answer_d = nps_rng.random(m) < NPS_AFTER_DELIVERY_P
    answer_c = nps_rng.random(c) < NPS_AFTER_CONTACT_P
    user = np.concatenate([order_user[answer_d], contact_user[answer_c]])
    t = np.concatenate(
        [
            delivery_t[answer_d] + DAY * nps_rng.uniform(0.3, 4.0, int(answer_d.sum())),
            contact_t[answer_c] + DAY * nps_rng.uniform(0.05, 2.0, int(answer_c.sum())),
        ]
    )
    mix = np.concatenate(
        [
            np.where(on_time[answer_d, None], NPS_MIX_ON_TIME, NPS_MIX_LATE),
            np.tile(NPS_MIX_CONTACT, (int(answer_c.sum()), 1)),
        ]
    )
    keep = t < LOG_END_S
    user, t, mix = user[keep], t[keep], mix[keep]
    shift = _effect(user, t, "nps", exposures, additive=True) / 200.0
    promoter = mix[:, 0] + np.minimum(shift, mix[:, 2])
    passive = mix[:, 1]
    r = len(user)
    draw = nps_rng.random(r)
    score = np.where(
        draw < promoter,
        nps_rng.choice([9, 10], size=r, p=[0.45, 0.55]),
        np.where(
            draw < promoter + passive,
            nps_rng.choice([7, 8], size=r, p=[0.45, 0.55]),
            nps_rng.choice(7, size=r, p=DETRACTOR_SCORES_P),
        ),
    )
    rows.add(
        "nps_response",
        user,
        t,
        value=score.astype(np.float64),
        comment=_comments(comments_rng, user, t, score, exposures),
    )

    return _to_frame(rows.concat(), platform, country, new_customer, n)


def _to_frame(
    cols: dict[str, np.ndarray],
    platform: np.ndarray,
    country: np.ndarray,
    new_customer: np.ndarray,
    n_users: int,
) -> pl.DataFrame:
    """Turn the generated code columns into the contract's typed frame."""
    user = cols["user"]
    width = max(6, len(str(n_users - 1)))
    start_us = int(LOG_START.timestamp() * 1_000_000)

    def names(codes: np.ndarray, labels: Sequence[str] | dict[int, str]) -> pl.Series:
        mapping = labels if isinstance(labels, dict) else dict(enumerate(labels))
        return pl.Series(codes.astype(np.int32)).replace_strict(
            mapping, default=None, return_dtype=pl.String
        )

    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(
                start_us + np.floor(cols["t"] * 1e6).astype(np.int64)
            ),
            "user_id": pl.Series(user),
            "event": names(cols["event"], EVENTS),
            "experiment_id": names(cols["experiment"], [p.id for p in PLANS]),
            "variant": names(
                cols["experiment"].astype(np.int32) * ARM_SLOTS + cols["variant"],
                {
                    ARM_SLOTS * e + a: x.id
                    for e, p in enumerate(PLANS)
                    for a, x in enumerate(p.arms)
                },
            ),
            "value": pl.Series(cols["value"], dtype=pl.Float64).fill_nan(None),
            "platform": names(platform[user], PLATFORMS),
            "country": names(country[user], COUNTRIES),
            "channel": names(cols["channel"], CHANNELS),
            "reason": names(cols["reason"], REASONS),
            "new_customer": pl.Series(new_customer[user]),
            "comment": names(cols["comment"], COMMENTS),
        }
    )
    return frame.with_columns(
        pl.col("timestamp").cast(pl.Datetime("us", "UTC")),
        ("u" + pl.col("user_id").cast(pl.String).str.zfill(width)).alias("user_id"),
    ).sort(["timestamp", "user_id", "event"], maintain_order=True)


def write_sample(
    path: Path = DEFAULT_PATH, seed: int = DEFAULT_SEED, n_users: int = DEFAULT_USERS
) -> Path:
    """Generate the sample log and write it as Parquet, atomically.

    The frame is written to a temporary file in the target's folder and then moved
    over the target with :func:`os.replace`, so readers never see a half-written file.

    Args:
        path: Where to write the Parquet file; its folder is created if needed.
        seed: Seed of the random generator.
        n_users: Number of users.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = generate_sample(seed=seed, n_users=n_users)
    # A unique name in the same folder (same file system, so os.replace is atomic);
    # created by the Parquet writer itself, so it gets the usual permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
