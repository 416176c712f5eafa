"""The one serializer: results → CONTRACT §4 JSON, CSV rows and a text table.

The contract's field names are spelled here and nowhere else. NaN (a test that could
not run) is written as ``null``, because NaN is not JSON.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from cxlab.analysis import Arm, ExperimentResult, MetricResult
from cxlab.errors import printable
from cxlab.health import HealthReport, ledger_table
from cxlab.planning import Plan, percent_text, plan_sentence
from cxlab.stats.aggregates import NpsStats
from cxlab.stats.survival import SurvivalStats
from cxlab.summaries import RowLedger

ROUND = 10  # significant digits kept in JSON numbers


def clean(value: Any) -> Any:
    """Make a value JSON-safe: NaN/inf → None, tuples → lists, floats rounded."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return float(f"{value:.{ROUND}g}")
    if isinstance(value, tuple | list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return clean(value.item())
    return value


def _arm(arm: Arm) -> dict[str, Any]:
    out: dict[str, Any] = {"n": arm.n, "value": arm.value}
    if isinstance(arm.stats, NpsStats):
        out |= {
            "promoters": arm.stats.promoters,
            "passives": arm.stats.passives,
            "detractors": arm.stats.detractors,
        }
    if isinstance(arm.stats, SurvivalStats):
        out["censored"] = arm.stats.censored
    return out


def result_to_dict(row: MetricResult) -> dict[str, Any]:
    """One scorecard row as a CONTRACT §4 ``results`` entry."""
    seq = row.sequential
    calls = row.calls
    sequential: dict[str, Any] = {
        "p_value": seq.p_value,
        "adjusted_p_value": calls["sequential"].adjusted_p_value,
        "alpha": calls["sequential"].alpha,
        "abs_ci": seq.abs_ci,
        "rel_ci": seq.rel_ci,
    }
    if seq.method == "group":
        sequential |= {
            "method": "group",
            "information_fraction": seq.information_fraction,
            "boundary_z": seq.boundary_z,
            "planned_size_exceeded": seq.planned_size_exceeded,
        }
    if seq.reason:
        sequential["reason"] = seq.reason
    out: dict[str, Any] = {
        "metric": row.metric.id,
        **({"category": row.category} if row.category is not None else {}),
        "variant": row.variant,
        "role": row.role,
        "control": _arm(row.control),
        "treatment": _arm(row.treatment),
        "abs_delta": row.abs_delta,
        "rel_delta": row.rel_delta,
        "fixed": {
            "p_value": row.fixed.p_value,
            "adjusted_p_value": row.adjusted_p_value,
            "alpha": calls["fixed"].alpha,
            "abs_ci": row.fixed.abs_ci,
            "rel_ci": row.fixed.rel_ci,
        },
        "sequential": sequential,
        "bayesian": {
            "prob_beat_control": row.bayesian.prob_beat_control,
            "expected_loss": row.bayesian.expected_loss,
            "alpha": calls["bayesian"].alpha,
            "abs_ci": row.bayesian.abs_ci,
            "rel_ci": row.bayesian.rel_ci,
        },
        "significant": row.significant,
        "verdict": row.verdict,
        "summary": row.summary,
    }
    if row.logrank_p_value is not None:
        out["fixed"]["logrank_p_value"] = row.logrank_p_value
    if row.beta_binomial is not None:
        prob, loss = row.beta_binomial
        out["bayesian"]["beta_binomial"] = {
            "prob_beat_control": prob,
            "expected_loss": loss,
        }
    if row.cuped is not None:
        cuped: dict[str, Any] = {"variance_reduction": row.cuped.variance_reduction}
        if row.cuped.reason:
            cuped["reason"] = row.cuped.reason
        else:
            cuped |= {
                "theta": row.cuped.theta,
                "abs_delta": row.cuped.abs_delta,
                "rel_delta": row.cuped.rel_delta,
            }
        out["cuped"] = cuped
    if row.cap is not None:
        out["cap"] = {"percentile": row.cap.percentile, "value": row.cap.value}
    if row.response is not None:
        out["control"]["response_rate"] = row.response.control_rate
        out["treatment"]["response_rate"] = row.response.treatment_rate
        out["control"]["responders"] = row.control.n
        out["treatment"]["responders"] = row.treatment.n
        out["response_check"] = {
            "p_value": row.response.p_value,
            "ok": row.response.ok,
        }
    if row.non_inferiority is not None:
        ni = row.non_inferiority
        out["non_inferiority"] = {
            "margin": ni.margin,
            "p_value": ni.p_value,
            "passed": ni.passed,
        }
    if row.reason:
        out["reason"] = row.reason
    return clean(out)


def experiment_to_dict(result: ExperimentResult) -> dict[str, Any]:
    """An analysed experiment as the CONTRACT §4 JSON object."""
    exp = result.experiment
    health = result.health
    return clean(
        {
            "experiment": exp.id,
            "name": exp.label,
            "as_of": result.as_of.isoformat(),
            "decision": exp.decision,
            "alpha": exp.alpha,
            "correction": exp.correction,
            "users": result.users,
            "multiple_exposures": result.multiple_exposures,
            "srm": {
                "p_value": result.srm.p_value,
                "ok": result.srm.ok,
                "expected": dict(zip(result.users, result.srm.expected, strict=False)),
                "sequential_p_value": result.sequential_srm.p_value,
                "sequential_ok": result.sequential_srm.ok,
            },
            "results": [result_to_dict(r) for r in result.results],
            "compositions": [
                {
                    "metric": c.metric.id,
                    "variant": c.variant,
                    "chi2": c.chi2,
                    "df": c.df,
                    "p_value": c.p_value,
                }
                for c in result.compositions
            ],
            "recommendation": {
                "action": result.recommendation.action,
                "reason": result.recommendation.reason,
            },
            "health": {
                "exposure_rows": health.exposure_rows,
                "exposures_outside_window": health.exposures_outside_window,
                "pre_exposure_events": health.pre_exposure_events,
                "finished": result.finished,
            },
            "warnings": list(result.warnings),
            "provenance": result.provenance,
        }
    )


def to_json(payload: Any) -> str:
    """Pretty JSON text of already-clean data."""
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)


CSV_COLUMNS = [
    "experiment", "as_of", "metric", "category", "variant", "role",
    "control_n", "control_value", "treatment_n", "treatment_value",
    "abs_delta", "rel_delta",
    "fixed_p_value", "fixed_adjusted_p_value",
    "fixed_alpha",
    "fixed_abs_ci_low", "fixed_abs_ci_high", "fixed_rel_ci_low", "fixed_rel_ci_high",
    "sequential_p_value", "sequential_adjusted_p_value", "sequential_alpha",
    "sequential_abs_ci_low", "sequential_abs_ci_high",
    "sequential_rel_ci_low", "sequential_rel_ci_high",
    "bayesian_prob_beat_control", "bayesian_expected_loss", "bayesian_alpha",
    "bayesian_abs_ci_low", "bayesian_abs_ci_high",
    "bayesian_rel_ci_low", "bayesian_rel_ci_high",
    "significant", "verdict", "summary",
    "cap_percentile", "cap_value",
]  # fmt: skip


def csv_rows(experiments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten experiment JSON objects to one CSV row per result."""
    rows = []
    for exp in experiments:
        for r in exp["results"]:
            f, s, b = r["fixed"], r["sequential"], r["bayesian"]
            rows.append(
                {
                    "experiment": exp["experiment"],
                    "as_of": exp["as_of"],
                    "metric": r["metric"],
                    "category": r.get("category"),
                    "variant": r["variant"],
                    "role": r["role"],
                    "control_n": r["control"]["n"],
                    "control_value": r["control"]["value"],
                    "treatment_n": r["treatment"]["n"],
                    "treatment_value": r["treatment"]["value"],
                    "abs_delta": r["abs_delta"],
                    "rel_delta": r["rel_delta"],
                    "fixed_p_value": f["p_value"],
                    "fixed_adjusted_p_value": f["adjusted_p_value"],
                    "fixed_alpha": f["alpha"],
                    "fixed_abs_ci_low": f["abs_ci"][0],
                    "fixed_abs_ci_high": f["abs_ci"][1],
                    "fixed_rel_ci_low": f["rel_ci"][0],
                    "fixed_rel_ci_high": f["rel_ci"][1],
                    "sequential_p_value": s["p_value"],
                    "sequential_adjusted_p_value": s["adjusted_p_value"],
                    "sequential_alpha": s["alpha"],
                    "sequential_abs_ci_low": s["abs_ci"][0],
                    "sequential_abs_ci_high": s["abs_ci"][1],
                    "sequential_rel_ci_low": s["rel_ci"][0],
                    "sequential_rel_ci_high": s["rel_ci"][1],
                    "bayesian_prob_beat_control": b["prob_beat_control"],
                    "bayesian_expected_loss": b["expected_loss"],
                    "bayesian_alpha": b["alpha"],
                    "bayesian_abs_ci_low": b["abs_ci"][0],
                    "bayesian_abs_ci_high": b["abs_ci"][1],
                    "bayesian_rel_ci_low": b["rel_ci"][0],
                    "bayesian_rel_ci_high": b["rel_ci"][1],
                    "significant": r["significant"],
                    "verdict": r["verdict"],
                    "summary": r["summary"],
                    "cap_percentile": r.get("cap", {}).get("percentile"),
                    "cap_value": r.get("cap", {}).get("value"),
                }
            )
    return rows


def to_csv(experiments: Sequence[dict[str, Any]]) -> str:
    """CSV text, one row per (experiment, as-of, metric, treatment)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(experiments))
    return buffer.getvalue()


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def to_table(experiments: Sequence[dict[str, Any]]) -> str:
    """A plain-text report for a terminal."""
    lines: list[str] = []
    for exp in experiments:
        users = ", ".join(f"{k} {v:,}" for k, v in exp["users"].items())
        srm = exp["srm"]
        lines += [
            f"{exp['name']} ({exp['experiment']}) as of {exp['as_of']}",
            f"  users: {users}; multiple exposures: {exp['multiple_exposures']:,}; "
            f"SRM p = {_fmt(srm['p_value'], 3)} ({'ok' if srm['ok'] else 'MISMATCH'})",
            f"  recommendation: {exp['recommendation']['action']} — "
            f"{exp['recommendation']['reason']}",
        ]
        method = exp["decision"]
        stat = "P(better)" if method == "bayesian" else "p (adj.)"
        header = (
            f"  {'metric':<24} {'variant':<18} {'role':<10} {'control':>10} "
            f"{'treatment':>10} {stat:>9} {'level':>7}  verdict ({method})"
        )
        lines += [header, "  " + "-" * (len(header) - 2)]
        for r in exp["results"]:
            block = r[method]
            value = (
                block["prob_beat_control"]
                if method == "bayesian"
                else block["adjusted_p_value"]
            )
            level = block["alpha"]
            name = r["metric"] + (f": {r['category']}" if r.get("category") else "")
            lines += [
                f"  {name:<24} {r['variant']:<18} {r['role']:<10} "
                f"{_fmt(r['control']['value']):>10} "
                f"{_fmt(r['treatment']['value']):>10} "
                f"{_fmt(value, 3):>9} "
                f"{(f'{(1 - level) * 100:.4g}%' if level is not None else '—'):>7}  "
                f"{r['verdict']}",
                f"    {r['summary']}",
            ]
        for warning in exp.get("warnings", []):
            lines.append(f"  ! {warning}")
        lines.append("")
    return "\n".join(lines)


# --- the planner and the data-health report ----------------------------------------


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (NaN written as null)."""
    return {
        "metric": plan.metric.id,
        "baseline": {
            "mean": plan.baseline_mean,
            "sd": math.sqrt(plan.baseline_var),
            "source": plan.baseline_source,
        },
        "relative_mde": plan.relative_mde,
        "alpha": plan.alpha,
        "power": plan.power,
        "variants": plan.variants,
        "daily_users": plan.daily_users,
        "population_share": plan.population_share,
        "fixed": {
            "users_per_arm": plan.users_per_arm,
            "total_users": plan.total_users,
            "days": plan.fixed_days,
        },
        "sequential": {
            "tuning": plan.tuning,
            "users_per_arm": plan.sequential_users_per_arm,
            "total_users": plan.sequential_total_users,
            "inflation": plan.inflation,
            "days": plan.sequential_days,
        },
        "method": "sequential" if plan.sequential else "fixed",
        "days": plan.days,
        "weeks": [
            {k: _finite_or_none(v) for k, v in dataclasses.asdict(w).items()}
            for w in plan.weeks
        ],
        "sentence": plan_sentence(plan),
    }


def plan_text(plan: Plan) -> str:
    """The plan as readable text for a terminal."""
    days = lambda d: "—" if d is None else f"{d:,}"  # noqa: E731
    lines = [
        plan_sentence(plan),
        "",
        f"metric:     {plan.metric.id} ({plan.metric.type}, {plan.metric.direction})",
        f"baseline:   mean {plan.baseline_mean:.6g}, sd "
        f"{math.sqrt(plan.baseline_var):.6g} ({plan.baseline_source})",
        f"inputs:     MDE {percent_text(plan.relative_mde)}, alpha {plan.alpha:g}, "
        f"power {plan.power:g}, {plan.variants} variants, daily users "
        f"{'—' if plan.daily_users is None else f'{plan.daily_users:,.0f}'}",
        f"fixed:      {plan.users_per_arm:,} per arm, {plan.total_users:,} total, "
        f"{days(plan.fixed_days)} days",
        f"sequential: {plan.sequential_users_per_arm:,} per arm, "
        f"{plan.sequential_total_users:,} total, {days(plan.sequential_days)} days "
        f"(inflation x{plan.inflation:.3f}, N* = {plan.tuning:,})",
    ]
    if plan.weeks:
        lines += ["", "week  users/arm   fixed MDE  sequential MDE"]
        lines += [
            f"{w.week:>4}  {w.users_per_arm:>9,}  {w.relative_mde:>9.2%}  "
            f"{w.sequential_mde:>14.2%}"
            for w in plan.weeks
        ]
    return "\n".join(lines) + "\n"


def health_to_dict(report: HealthReport) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {
        "source": report.source,
        "files": report.files,
        "rows": report.rows,
        "users": report.users,
        "first_event": report.first_event.isoformat() if report.first_event else None,
        "last_event": report.last_event.isoformat() if report.last_event else None,
        "events_by_type": report.events_by_type.to_dicts(),
        "experiments": [
            {
                "experiment": e.experiment_id,
                "as_of": e.as_of.isoformat(),
                "variants": e.by_variant.to_dicts(),
                "multiple_exposures": e.multiple_exposures,
                "exposures_outside_window": e.exposures_outside_window,
                "pre_exposure_events": e.pre_exposure_events,
            }
            for e in report.experiments
        ],
        "set_aside": dict(report.set_aside),
        "set_aside_examples": {
            key: [
                {k.lstrip("_"): _json_value(v) for k, v in row.items()}
                for row in frame.to_dicts()
            ]
            for key, frame in report.set_aside_examples.items()
        },
        **({"ledger": _ledger_dict(report.ledger)} if report.ledger else {}),
    }


def _ledger_dict(ledger: RowLedger) -> dict[str, Any]:
    """CONTRACT §1's ``ledger``: rows, used, set_aside by reason, and examples."""
    return {
        "rows": ledger.rows,
        "used": ledger.used,
        "set_aside": dict(ledger.set_aside),
        "examples": {
            reason: [
                {k: _json_value(v) for k, v in row.items()} for row in frame.to_dicts()
            ]
            for reason, frame in ledger.examples.items()
            if ledger.set_aside.get(reason)
        },
    }


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def health_text(report: HealthReport) -> str:
    """The data-health report as readable text for a terminal."""
    span = (
        f"{report.first_event:%Y-%m-%d %H:%M} .. {report.last_event:%Y-%m-%d %H:%M} UTC"
        if report.first_event and report.last_event
        else "—"
    )
    lines = [
        f"Event log: {report.source} ({report.files} file(s))",
        f"  rows: {report.rows:,}   users: {report.users:,}   span: {span}",
        "",
        "Events by type:",
    ]
    lines += [
        f"  {row['event']:<20} {row['rows']:>12,} rows"
        for row in report.events_by_type.iter_rows(named=True)
    ]
    lines += ["", "Exposures per experiment and variant:"]
    for exp in report.experiments:
        lines.append(
            f"  {exp.experiment_id} (as of {exp.as_of}): "
            f"{exp.multiple_exposures:,} multiple-exposure users excluded, "
            f"{exp.exposures_outside_window:,} exposure rows outside the window"
        )
        for row in exp.by_variant.iter_rows(named=True):
            lines.append(
                f"    {row['variant']:<22} {row['exposure_rows']:>10,} rows "
                f"{row['users']:>10,} exposed users {row['analysed']:>10,} analysed"
            )
    if report.ledger is not None:
        lines += ["", "Ledger: every row of the log in one bucket:"]
        for row in ledger_table(report.ledger).iter_rows(named=True):
            lines.append(
                f"  {row['bucket']:<24} {row['rows']:>12,} {row['share']:>8.2%}  "
                f"{row['meaning']}"
            )
            examples = report.ledger.examples.get(row["bucket"])
            if row["rows"] and examples is not None and examples.height:
                lines += [f"      e.g. {_example(r)}" for r in examples.to_dicts()]
    return "\n".join(lines) + "\n"


def _example(row: dict[str, Any]) -> str:
    return printable(", ".join(f"{k.lstrip('_')}={v!s}" for k, v in row.items()))
