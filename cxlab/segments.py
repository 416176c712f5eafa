"""Dimension breakdowns: the fixed-horizon test within each segment.

Segment results come from the as-of summaries per dimension value
(:attr:`cxlab.summaries.Summaries.by_dimension`), turned into arm statistics with
:func:`cxlab.metrics.arm_stats` and tested with :func:`cxlab.stats.fixed.fixed_test`.
Many segments mean many tests, so the p-values are also adjusted across the
breakdown (Holm by default) and :func:`comparisons_note` says so in words.
"""

from __future__ import annotations

import math

import polars as pl

from cxlab.config import Correction, Experiment, MetricDef
from cxlab.metrics import arm_stats, metric_type
from cxlab.stats.corrections import adjust_p_values
from cxlab.stats.fixed import fixed_test

SEGMENT_COLUMNS = (
    "dimension",
    "segment",
    "control_n",
    "treatment_n",
    "control_value",
    "treatment_value",
    "abs_delta",
    "rel_delta",
    "rel_ci_low",
    "rel_ci_high",
    "p_value",
    "adjusted_p_value",
    "significant",
)


def _empty() -> pl.DataFrame:
    schema: dict[str, type[pl.DataType]] = dict.fromkeys(SEGMENT_COLUMNS, pl.Float64)
    schema |= {
        "dimension": pl.String,
        "segment": pl.String,
        "control_n": pl.Int64,
        "treatment_n": pl.Int64,
        "significant": pl.Boolean,
    }
    return pl.DataFrame(schema=schema)


def segment_results(
    by_dimension: pl.DataFrame,
    experiment: Experiment,
    metric: MetricDef,
    variant: str,
    *,
    correction: Correction = "holm",
) -> pl.DataFrame:
    """The fixed test of one metric and treatment within every segment.

    Args:
        by_dimension: the summaries per dimension value (columns ``experiment_id``,
            ``metric``, ``variant``, ``dimension``, ``segment`` and the sums).
        experiment: the experiment (its control and ``alpha``).
        metric: the metric.
        variant: the treatment compared with the control.
        correction: how to adjust the p-values across all segments of all
            dimensions (``holm``, ``bh`` or ``none``).

    Returns:
        One row per (dimension, segment) with both arms' n and value, the deltas,
        the relative interval, the raw and adjusted p-values and whether the
        adjusted one is below ``alpha`` (columns :data:`SEGMENT_COLUMNS`), sorted
        by dimension and segment. Empty when the experiment has no dimensions.
    """
    rows = by_dimension.filter(
        (pl.col("experiment_id") == experiment.id) & (pl.col("metric") == metric.id)
    )
    if rows.is_empty() or metric_type(metric).detail is not None:
        return _empty()  # per-category rates and times to an event: no breakdown
    out = []
    groups = rows.partition_by("dimension", "segment", as_dict=True)
    for (dimension, segment), seg in sorted(groups.items(), key=_key):
        control = seg.filter(pl.col("variant") == experiment.control).to_dicts()
        treatment = seg.filter(pl.col("variant") == variant).to_dicts()
        if not control or not treatment:
            continue
        c, t = arm_stats(metric, control[0]), arm_stats(metric, treatment[0])
        test = fixed_test(c, t, alpha=experiment.alpha)
        out.append(
            {
                "dimension": dimension,
                "segment": "(missing)" if segment is None else str(segment),
                "control_n": c.n,
                "treatment_n": t.n,
                "control_value": c.mean,
                "treatment_value": t.mean,
                "abs_delta": test.abs_delta,
                "rel_delta": test.rel_delta,
                "rel_ci_low": test.rel_ci[0],
                "rel_ci_high": test.rel_ci[1],
                "p_value": test.p_value,
            }
        )
    if not out:
        return _empty()
    adjusted = _adjust([row["p_value"] for row in out], correction)
    for row, p in zip(out, adjusted, strict=True):
        row["adjusted_p_value"] = p
        row["significant"] = bool(p < experiment.alpha)
    return pl.DataFrame(out).select(SEGMENT_COLUMNS)


def _key(item: tuple[tuple[object, ...], pl.DataFrame]) -> tuple[str, str]:
    dimension, segment = item[0]
    return str(dimension), "" if segment is None else str(segment)


def _adjust(p_values: list[float], correction: Correction) -> list[float]:
    """Adjust the finite p-values; NaN (a test that could not run) stays NaN."""
    finite = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = adjust_p_values([p_values[i] for i in finite], correction)
    out = [math.nan] * len(p_values)
    for i, p in zip(finite, adjusted, strict=True):
        out[i] = p
    return out


def comparisons_note(n_tests: int, alpha: float, correction: Correction) -> str:
    """A plain sentence on multiple comparisons in a breakdown of ``n_tests`` tests.

    Args:
        n_tests: how many segment tests the breakdown shows.
        alpha: the significance level.
        correction: the adjustment applied to the p-values.

    Returns:
        The sentence.
    """
    expected = n_tests * alpha
    how = {
        "holm": "Holm-adjusted (family-wise error)",
        "bh": "Benjamini-Hochberg-adjusted (false discovery rate)",
        "none": "not adjusted",
    }[correction]
    return (
        f"{n_tests} segment tests: at α = {alpha:g} about {expected:.1f} of them "
        f"would look significant by chance alone if nothing differed. p-values are "
        f"{how}; treat segment differences as hypotheses for a new test, not as "
        "findings."
    )
