"""Per metric type, a user's contribution to the summary columns, as SQL.

The SQL twin of :meth:`cxlab.metrics.MetricKind.user_values`: from a user's
component values (NULL where the user has no such event) to each summary column
the type fills. Which columns a type fills and which population ``n`` counts come
from the registry itself (:data:`cxlab.metrics.TYPES`); only the arithmetic is
written here again, because the registry's is Polars expressions. A type without
an entry here cannot be reduced in SQL: :func:`sql_values` says so by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp

from cxlab.errors import InputError
from cxlab.metrics import NPS_PASSIVE_MIN, NPS_PROMOTER_MIN, RESPONDERS
from cxlab.stats.aggregates import NPS_SCALE

Values = Callable[[Sequence[exp.Expression]], dict[str, exp.Expression]]


class UnsupportedMetricError(InputError):
    """A metric type the SQL reduction cannot express yet."""


def _zero(value: exp.Expression) -> exp.Expression:
    return exp.func("COALESCE", value.copy(), exp.Literal.number(0))


def _flag(condition: exp.Expression) -> exp.Expression:
    """1.0 where the condition holds, else 0.0 (also where it is NULL)."""
    return (
        exp.case()
        .when(condition, exp.Literal.number("1.0"))
        .else_(exp.Literal.number("0.0"))
    )


def _squares(x: exp.Expression) -> dict[str, exp.Expression]:
    return {"sum_x": x, "sum_xx": exp.Mul(this=x.copy(), expression=x.copy())}


def _proportion(values: Sequence[exp.Expression]) -> dict[str, exp.Expression]:
    """X = 1 if the user had the event (count > 0), else 0."""
    return _squares(
        _flag(exp.GT(this=_zero(values[0]), expression=exp.Literal.number(0)))
    )


def _mean(values: Sequence[exp.Expression]) -> dict[str, exp.Expression]:
    """X = the user's aggregate, 0 without events."""
    return _squares(_zero(values[0]))


def _ratio(values: Sequence[exp.Expression]) -> dict[str, exp.Expression]:
    """x, y = numerator and denominator, 0 without events."""
    x, y = _zero(values[0]), _zero(values[1])
    return {
        **_squares(x),
        "sum_y": y,
        "sum_yy": exp.Mul(this=y.copy(), expression=y.copy()),
        "sum_xy": exp.Mul(this=x.copy(), expression=y.copy()),
    }


def _nps(values: Sequence[exp.Expression]) -> dict[str, exp.Expression]:
    """Responder 1/0; promoter (9-10) 1/0 in x, detractor (0-6) 1/0 in y."""
    score = values[0]
    return {
        RESPONDERS: _flag(
            exp.Not(this=exp.Is(this=score.copy(), expression=exp.Null()))
        ),
        "sum_x": _flag(
            exp.GTE(this=score.copy(), expression=exp.Literal.number(NPS_PROMOTER_MIN))
        ),
        "sum_y": _flag(
            exp.LT(this=score.copy(), expression=exp.Literal.number(NPS_PASSIVE_MIN))
        ),
    }


def _started(values: Sequence[exp.Expression]) -> dict[str, exp.Expression]:
    """Responder 1/0: the user had a start event (the Kaplan–Meier population)."""
    return {
        RESPONDERS: _flag(
            exp.GT(this=_zero(values[0]), expression=exp.Literal.number(0))
        )
    }


SQL_VALUES: dict[str, Values] = {
    "proportion": _proportion,
    "mean": _mean,
    "ratio": _ratio,
    "nps": _nps,
    "categorical": _mean,  # the metric's own row: all its events per user
    "time_to_event": _started,
}


def _product(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.Mul(this=a.copy(), expression=b.copy())


def _nps_score(score: exp.Expression) -> exp.Expression:
    """An answer as +100 (promoter), 0 (passive) or −100 (detractor); 0 if none."""
    parts = _nps([score])
    return exp.Mul(
        this=exp.Literal.number(NPS_SCALE),
        expression=exp.Paren(
            this=exp.Sub(this=parts["sum_x"], expression=parts["sum_y"])
        ),
    )


@dataclass(frozen=True)
class SqlCuped:
    """A type's CUPED sums in SQL, twins of the registry's (:mod:`cxlab.metrics`).

    ``pre``: the user's covariates from the pre-period components
    (:meth:`~cxlab.metrics.MetricKind.pre_values`); ``entry``: the sums a user
    adds on entering (``entry_sums``); ``changes``: the sums that change with the
    user's values (``cuped_sums``). Deng, Xu, Kohavi & Walker (2013), CUPED (WSDM
    2013, DOI:10.1145/2433396.2433413); for the ratio's cross-products, Deng,
    Knoblich & Lu (2018), the delta method in metric analytics (KDD 2018).
    """

    pre: Callable[[Sequence[exp.Expression]], dict[str, exp.Expression]]
    entry: Callable[[Mapping[str, exp.Expression]], dict[str, exp.Expression]]
    changes: Callable[
        [Sequence[exp.Expression], Mapping[str, exp.Expression]],
        dict[str, exp.Expression],
    ]


def _one_entry(pre: Mapping[str, exp.Expression]) -> dict[str, exp.Expression]:
    """Σx₀, Σx₀²."""
    return {"pre_x": pre["x0"].copy(), "pre_xx": _product(pre["x0"], pre["x0"])}


def _cuped_of(values_of: Values) -> SqlCuped:
    """CUPED of a one-value type (proportion, mean): x₀ its own pre-period x."""

    def pre(values: Sequence[exp.Expression]) -> dict[str, exp.Expression]:
        return {"x0": values_of(values)["sum_x"]}

    def changes(
        values: Sequence[exp.Expression], pre_: Mapping[str, exp.Expression]
    ) -> dict[str, exp.Expression]:
        return {"pre_xy": _product(values_of(values)["sum_x"], pre_["x0"])}

    return SqlCuped(pre, _one_entry, changes)


def _ratio_pre(values: Sequence[exp.Expression]) -> dict[str, exp.Expression]:
    """x₀, y₀: the pre-period numerator and denominator."""
    parts = _ratio(values)
    return {"x0": parts["sum_x"], "y0": parts["sum_y"]}


def _ratio_entry(pre: Mapping[str, exp.Expression]) -> dict[str, exp.Expression]:
    """Σx₀, Σx₀², Σy₀, Σy₀², Σx₀y₀."""
    x0, y0 = pre["x0"], pre["y0"]
    return {
        "pre_x": x0.copy(),
        "pre_xx": _product(x0, x0),
        "pre_y": y0.copy(),
        "pre_yy": _product(y0, y0),
        "pre_x0y0": _product(x0, y0),
    }


def _ratio_changes(
    values: Sequence[exp.Expression], pre: Mapping[str, exp.Expression]
) -> dict[str, exp.Expression]:
    """Σx·x₀, Σx·y₀, Σy·x₀, Σy·y₀."""
    parts = _ratio(values)
    x, y, x0, y0 = parts["sum_x"], parts["sum_y"], pre["x0"], pre["y0"]
    return {
        "pre_xy": _product(x, x0),
        "pre_xy0": _product(x, y0),
        "pre_yx0": _product(y, x0),
        "pre_yy0": _product(y, y0),
    }


def _nps_changes(
    values: Sequence[exp.Expression], pre: Mapping[str, exp.Expression]
) -> dict[str, exp.Expression]:
    """Per responder x₀, x₀² and s·x₀ (the covariate sums enter with the answer)."""
    responder = _nps(values)[RESPONDERS]
    x0 = pre["x0"]
    return {
        "pre_x": _product(responder, x0),
        "pre_xx": _product(_product(responder, x0), x0),
        "pre_xy": _product(_nps_score(values[0]), x0),
    }


SQL_CUPED: dict[str, SqlCuped] = {
    "proportion": _cuped_of(_proportion),
    "mean": _cuped_of(_mean),
    "ratio": SqlCuped(_ratio_pre, _ratio_entry, _ratio_changes),
    "nps": SqlCuped(
        lambda values: {"x0": _nps_score(values[0])},
        lambda pre: {},
        _nps_changes,
    ),
}


def sql_cuped(metric_type: str, engine: str) -> SqlCuped:
    """The SQL CUPED sums of a metric type.

    Raises:
        UnsupportedMetricError: the SQL reduction has no CUPED rule for the type.
    """
    if metric_type not in SQL_CUPED:
        raise UnsupportedMetricError(
            f"CUPED on {metric_type} metrics is not supported by the {engine} "
            "engine yet (use --engine polars, or cuped_days: 0)"
        )
    return SQL_CUPED[metric_type]


def sql_values(metric_type: str, engine: str) -> Values:
    """The SQL user values of a metric type.

    Raises:
        UnsupportedMetricError: the SQL reduction has no rule for the type.
    """
    if metric_type not in SQL_VALUES:
        raise UnsupportedMetricError(
            f"{metric_type} metrics are not supported by the {engine} engine yet"
        )
    return SQL_VALUES[metric_type]
