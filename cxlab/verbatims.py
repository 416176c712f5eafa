"""The customers' own words next to the NPS: sampled comments and distinct terms.

Reads the small comment tables of :mod:`cxlab.summaries.voice` as of a day: per
arm a reproducible sample of promoters' and detractors' comments, and the words
each arm's detractors use distinctly more than the other arms' detractors, by
the weighted log-odds with an informative Dirichlet prior (the pooled counts of
all arms' detractors; :func:`cxlab.stats.fightin_words.log_odds_z`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from cxlab.config import Experiment
from cxlab.stats.fightin_words import log_odds_z
from cxlab.summaries import Summaries
from cxlab.summaries.voice import DETRACTOR, PROMOTER, comments_at

COMMENTS_PER_BAND = 4
DISTINCT_Z = 1.96  # a word is distinct when its z-score exceeds this
DISTINCT_WORDS = 8


@dataclass(frozen=True, slots=True)
class DistinctWord:
    """A word one arm's detractors use more than the others'."""

    word: str
    z: float
    count: int  # in this arm's detractors' comments
    others: int  # in the other arms' detractors' comments


@dataclass(frozen=True, slots=True)
class ArmVoice:
    """One arm's own words: sampled comments and its distinct detractor terms."""

    variant: str
    promoters: tuple[str, ...]
    detractors: tuple[str, ...]
    distinct: tuple[DistinctWord, ...]


def arm_voices(
    summaries: Summaries, exp: Experiment, metric_id: str, day: dt.date
) -> tuple[ArmVoice, ...]:
    """Each arm's comments and distinct detractor words as of the end of ``day``.

    Empty when the log has no comments on the metric's answers (no ``comment``
    column, or none of the analysed answers carries one).
    """
    if summaries.comments is None or summaries.words is None:
        return ()
    of_metric = (pl.col("experiment_id") == exp.id) & (pl.col("metric") == metric_id)
    sample = comments_at(summaries.comments.filter(of_metric), day, COMMENTS_PER_BAND)
    words = (
        summaries.words.filter(of_metric & (pl.col("day") <= day))
        .group_by("variant", "word")
        .agg(pl.col("count").sum())
        .filter(pl.col("count") > 0)
    )
    if not sample.height and not words.height:
        return ()
    return tuple(
        ArmVoice(
            variant,
            _texts(sample, variant, PROMOTER),
            _texts(sample, variant, DETRACTOR),
            _distinct(words, variant),
        )
        for variant in exp.variant_ids
    )


def _texts(sample: pl.DataFrame, variant: str, band: str) -> tuple[str, ...]:
    of_band = (pl.col("variant") == variant) & (pl.col("band") == band)
    return tuple(sample.filter(of_band)["comment"].to_list())


def _distinct(words: pl.DataFrame, variant: str) -> tuple[DistinctWord, ...]:
    """Words this arm's detractors use distinctly more than the other arms'."""
    table = (
        words.group_by("word")
        .agg(
            pl.col("count").filter(pl.col("variant") == variant).sum().alias("arm"),
            pl.col("count").filter(pl.col("variant") != variant).sum().alias("others"),
        )
        .sort("word")
    )
    arm, others = table["arm"].to_numpy(), table["others"].to_numpy()
    z = log_odds_z(arm, others, arm + others)
    scored = table.with_columns(pl.Series("z", z, pl.Float64)).filter(
        pl.col("z") > DISTINCT_Z
    )
    top = scored.sort(["z", "word"], descending=[True, False]).head(DISTINCT_WORDS)
    return tuple(
        DistinctWord(word, float(score), int(count), int(other))
        for word, score, count, other in top.select(
            "word", "z", "arm", "others"
        ).iter_rows()
    )


def comment_frame(voice: ArmVoice) -> pl.DataFrame:
    """An arm's sampled comments as a table: who said it, and the words."""
    said = [("promoter", c) for c in voice.promoters]
    said += [("detractor", c) for c in voice.detractors]
    return pl.DataFrame(
        said, schema={"said by": pl.String, "comment": pl.String}, orient="row"
    )


def distinct_frame(voice: ArmVoice) -> pl.DataFrame:
    """An arm's distinct detractor words: the word, its z-score and counts."""
    return pl.DataFrame(
        [(w.word, w.z, w.count, w.others) for w in voice.distinct],
        schema={
            "word": pl.String,
            "z": pl.Float64,
            "this arm": pl.Int64,
            "other arms": pl.Int64,
        },
        orient="row",
    )
