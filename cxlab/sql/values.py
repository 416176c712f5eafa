"""Per metric type, a user's contribution to the summary columns, as SQL.

The SQL twin of :meth:`cxlab.metrics.MetricKind.user_values`: from a user's
component values (NULL where the user has no such event) to each summary column
the type fills. Which columns a type fills and which population ``n`` counts come
from the registry itself (:data:`cxlab.metrics.TYPES`); only the arithmetic is
written here again, because the registry's is Polars expressions. A type without
an entry here cannot be reduced in SQL: :func:`sql_values` says so by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from cxlab.config import MetricDef
from cxlab.errors import InputError
from cxlab.metrics import NPS_PASSIVE_MIN, NPS_PROMOTER_MIN, RESPONDERS

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


SQL_VALUES: dict[str, Values] = {
    "proportion": _proportion,
    "mean": _mean,
    "ratio": _ratio,
    "nps": _nps,
    "categorical": _mean,  # the metric's own row: all its events per user
}


# CUPED in SQL: the covariate is the metric's own pre-period value (sum_x), which
# fits these types; ratio and NPS CUPED need more sums (cxlab.metrics entries).
SQL_CUPED = ("proportion", "mean")


def check_sql_cuped(metric_type: str, engine: str) -> None:
    """Refuse CUPED on a type the SQL reduction cannot adjust, naming it.

    Raises:
        UnsupportedMetricError: the SQL reduction has no CUPED rule for the type.
    """
    if metric_type not in SQL_CUPED:
        raise UnsupportedMetricError(
            f"CUPED on {metric_type} metrics is not supported by the {engine} "
            "engine yet (use --engine polars, or cuped_days: 0)"
        )


def check_sql_cap(metric: MetricDef, engine: str) -> None:
    """Refuse a capped mean, naming it: its daily caps are the Polars engine's.

    Raises:
        UnsupportedMetricError: the metric has a ``cap``.
    """
    if metric.cap is not None:
        raise UnsupportedMetricError(
            f"metric '{metric.id}': 'cap' is not supported by the {engine} engine "
            "yet (use --engine polars)"
        )


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
