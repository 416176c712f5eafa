"""NPS comments: the sampled words per arm and the detractors' distinct terms."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from cxlab.stats.fightin_words import log_odds_z
from cxlab.summaries import at_day
from cxlab.summaries.voice import comments_at
from cxlab.verbatims import arm_voices, comment_frame, distinct_frame


def _answer(lab, when, user, score, comment):
    return {**lab.event(when, user, "nps_response", value=score), "comment": comment}


@pytest.fixture
def rows(lab) -> list[dict]:
    e = lab.event
    out = []
    for arm, late in (("control", 22), ("treatment", 4)):
        for i in range(30):
            uid = f"{arm}{i}"
            out.append(e("2026-10-01T08:00:00Z", uid, "exposure", arm))
            text = "Parcel was LATE again" if i < late else "Refund took too long"
            out.append(_answer(lab, f"2026-10-0{2 + i % 3}T09:00:00Z", uid, 3, text))
        out.append(
            _answer(lab, "2026-10-02T10:00:00Z", f"{arm}0", 10, f"Great {arm} service")
        )
    out += [
        # before exposure: not counted
        _answer(lab, "2026-09-30T09:00:00Z", "control1", 2, "zebra zebra"),
        # passive: neither sampled nor counted
        _answer(lab, "2026-10-02T11:00:00Z", "control2", 8, "okay parcel"),
        # x meets both arms on 10-04: counted 10-02 and 10-03, gone from 10-04
        e("2026-10-01T08:00:00Z", "x", "exposure", "treatment"),
        _answer(lab, "2026-10-02T09:00:00Z", "x", 0, "Broken broken box"),
        e("2026-10-04T08:00:00Z", "x", "exposure", "control"),
    ]
    return out


def _voices(lab, rows, day="2026-10-05", **fields):
    s = lab.summarize(rows, primary_metric="nps", **fields)
    exp, _ = lab.load()
    return {v.variant: v for v in arm_voices(s, exp, "nps", dt.date.fromisoformat(day))}


def test_words_of_detractors_are_counted_per_arm_without_stop_words(lab, rows) -> None:
    voices = _voices(lab, rows)
    control, treatment = voices["control"], voices["treatment"]
    # control: 22 × "parcel was late again", 8 × "refund took too long";
    # treatment: 4 × late, 26 × refund ("was", "too" are stop words).
    words = ["again", "late", "long", "parcel", "refund", "took"]
    a = np.array([22.0, 22, 8, 22, 8, 8])
    b = np.array([4.0, 4, 26, 4, 26, 26])
    z = dict(zip(words, log_odds_z(a, b, a + b), strict=True))
    assert [w.word for w in control.distinct] == ["again", "late", "parcel"]
    assert control.distinct[0].z == pytest.approx(z["again"], rel=1e-12)
    # By hand (eq. 22): n_a = n_b = 90 words, α_again = 26, α₀ = 180:
    # δ = log(48/222) − log(30/240) = 0.547956, σ² = 1/48 + 1/30, z = 2.354436
    assert z["again"] == pytest.approx(2.354436, abs=1e-6)
    assert (control.distinct[0].count, control.distinct[0].others) == (22, 4)
    assert [w.word for w in treatment.distinct] == ["long", "refund", "took"]
    assert treatment.distinct[0].z == pytest.approx(-z["long"], rel=1e-12)
    assert "zebra" not in distinct_frame(control)["word"].to_list()


def test_sample_has_promoters_and_detractors_and_is_reproducible(lab, rows) -> None:
    first, again = _voices(lab, rows), _voices(lab, list(reversed(rows)))
    control = first["control"]
    assert control.promoters == ("Great control service",)
    assert len(control.detractors) == 4  # COMMENTS_PER_BAND
    assert set(control.detractors) <= {"Parcel was LATE again", "Refund took too long"}
    assert again["control"] == control  # row order changes nothing
    frame = comment_frame(control)
    assert frame.columns == ["said by", "comment"]
    assert frame["said by"].to_list() == ["promoter", *["detractor"] * 4]


def test_a_user_meeting_a_second_variant_leaves_on_that_day(lab, rows) -> None:
    s = lab.summarize(rows, primary_metric="nps")
    broken = s.words.filter(pl.col("word") == "broken")
    # counted twice on 10-02 (treatment), taken back on 10-04
    assert broken.select("variant", "day", "count").rows() == [
        ("treatment", dt.date(2026, 10, 2), 2),
        ("treatment", dt.date(2026, 10, 4), -2),
    ]
    said = {
        day: set(comments_at(s.comments, dt.date(2026, 10, day), 100)["comment"])
        for day in (3, 4)
    }
    assert "Broken broken box" in said[3]
    assert "Broken broken box" not in said[4]


def test_an_earlier_day_equals_a_fresh_scan_at_that_day(lab, rows) -> None:
    full = lab.summarize(rows, primary_metric="nps")
    exp, catalog = lab.load()
    for day in (dt.date(2026, 10, d) for d in range(1, 6)):
        fresh = lab.summarize(rows, primary_metric="nps", as_of=day)
        cut = at_day(full, day, catalog)
        assert arm_voices(cut, exp, "nps", day) == arm_voices(fresh, exp, "nps", day)


def test_without_a_comment_column_nothing_is_shown(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T08:00:00Z", "a", "exposure", "control"),
        e("2026-10-02T08:00:00Z", "a", "nps_response", value=2),
    ]
    assert _voices(lab, rows) == {}
