"""The command line in-process (CONTRACT §4): ``main([...])`` → exit code and JSON.

The log of most tests (experiment ``exp``, 2026-10-01 .. 2026-10-05):

* control c1..c4 exposed 10-01; c1 orders 10 on 10-02, c2 orders 20 on 10-03;
* treatment t1..t4 exposed 10-02; t1 orders 30 and t2 10 on 10-02, t3 20 on 10-04;
* m exposed to control on 10-01 and to treatment on 10-03: excluded from 10-03 on.

At the end: conversion control 2/4 = 0.5, treatment 3/4 = 0.75 → abs_delta 0.25,
rel_delta 0.75 / 0.5 − 1 = 0.5; revenue control (10 + 20) / 4 = 7.5, treatment
(30 + 10 + 20) / 4 = 15 → abs_delta 7.5, rel_delta 1.0.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import run_cli


def strict_json(text: str):
    """json.loads that refuses NaN and ±Infinity (not JSON)."""

    def refuse(constant: str):
        raise ValueError(f"non-JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def cli_lab(lab):
    e = lab.event
    rows = []
    for i in range(1, 5):
        rows.append(e("2026-10-01T09:00:00Z", f"c{i}", "exposure", "control"))
        rows.append(e("2026-10-02T09:00:00Z", f"t{i}", "exposure", "treatment"))
    rows += [
        e("2026-10-02T10:00:00Z", "c1", "order", value=10),
        e("2026-10-03T10:00:00Z", "c2", "order", value=20),
        e("2026-10-02T10:00:00Z", "t1", "order", value=30),
        e("2026-10-02T11:00:00Z", "t2", "order", value=10),
        e("2026-10-04T10:00:00Z", "t3", "order", value=20),
        e("2026-10-01T09:00:00Z", "m", "exposure", "control"),
        e("2026-10-03T09:00:00Z", "m", "exposure", "treatment"),
    ]
    lab.events_path = lab.log(rows)
    lab.experiment(secondary_metrics=["revenue"])
    return lab


def run(lab, *args: str) -> tuple[int, str, str]:
    events, experiments = str(lab.events_path), str(lab.experiments_dir)
    return run_cli(*args, "--events", events, "--experiments", experiments)


def analyze(lab, *args: str):
    code, out, err = run(lab, "analyze", *args)
    assert code == 0, err
    return strict_json(out)


def result(payload: dict, metric: str) -> dict:
    (row,) = [r for r in payload["results"] if r["metric"] == metric]
    return row


def test_analyze_json_has_the_contract_keys(cli_lab) -> None:
    payload = analyze(cli_lab, "exp")

    assert payload["experiment"] == "exp"
    assert payload["as_of"] == "2026-10-05"
    assert payload["users"] == {"control": 4, "treatment": 4}
    assert payload["multiple_exposures"] == 1
    assert set(payload["srm"]) >= {"p_value", "ok"}
    assert set(payload["recommendation"]) >= {"action", "reason"}
    assert payload["recommendation"]["action"] in {
        "ship",
        "roll_back",
        "review",
        "keep_running",
    }
    assert isinstance(payload["recommendation"]["reason"], str)
    assert [r["metric"] for r in payload["results"]] == ["conversion", "revenue"]
    for row in payload["results"]:
        assert set(row) >= {
            "metric", "variant", "role", "control", "treatment", "abs_delta",
            "rel_delta", "fixed", "sequential", "bayesian", "significant", "verdict",
        }  # fmt: skip
        assert set(row["control"]) >= {"n", "value"}
        assert set(row["treatment"]) >= {"n", "value"}
        assert set(row["fixed"]) >= {"p_value", "adjusted_p_value", "abs_ci", "rel_ci"}
        assert set(row["sequential"]) >= {"p_value", "abs_ci", "rel_ci"}
        assert set(row["bayesian"]) >= {"prob_beat_control", "expected_loss", "rel_ci"}
        assert isinstance(row["significant"], bool)
        assert row["verdict"] in {"win", "loss", "inconclusive"}
        assert "cuped" not in row  # cuped_days is 0


def test_analyze_json_values_match_hand_computed_ones(cli_lab) -> None:
    payload = analyze(cli_lab, "exp")

    conversion = result(payload, "conversion")
    assert conversion["variant"] == "treatment"
    assert conversion["role"] == "primary"
    assert conversion["control"] == {"n": 4, "value": 0.5}
    assert conversion["treatment"] == {"n": 4, "value": 0.75}
    assert conversion["abs_delta"] == pytest.approx(0.25, rel=1e-9)
    assert conversion["rel_delta"] == pytest.approx(0.5, rel=1e-9)

    revenue = result(payload, "revenue")
    assert revenue["role"] == "secondary"
    assert revenue["control"] == {"n": 4, "value": 7.5}
    assert revenue["treatment"] == {"n": 4, "value": 15.0}
    assert revenue["abs_delta"] == pytest.approx(7.5, rel=1e-9)
    assert revenue["rel_delta"] == pytest.approx(1.0, rel=1e-9)


def test_srm_of_an_even_split_is_ok(cli_lab) -> None:
    payload = analyze(cli_lab, "exp")
    # 4 vs 4 against 50/50: chi-square statistic 0 → p = 1
    assert payload["srm"]["p_value"] == pytest.approx(1.0)
    assert payload["srm"]["ok"] is True


def test_experiment_given_as_a_config_path(cli_lab) -> None:
    payload = analyze(cli_lab, str(cli_lab.experiments_dir / "exp.yaml"))
    assert payload["experiment"] == "exp"


def test_as_of_analyses_the_data_at_the_end_of_that_day(cli_lab) -> None:
    payload = analyze(cli_lab, "exp", "--as-of", "2026-10-02")
    # as of 10-02: m has not yet seen treatment, so control is c1..c4 + m = 5;
    # conversion control 1/5 (c1), treatment 2/4 (t1, t2)
    assert payload["as_of"] == "2026-10-02"
    assert payload["users"] == {"control": 5, "treatment": 4}
    assert payload["multiple_exposures"] == 0
    conversion = result(payload, "conversion")
    assert conversion["control"] == {"n": 5, "value": 0.2}
    assert conversion["treatment"] == {"n": 4, "value": 0.5}
    assert conversion["abs_delta"] == pytest.approx(0.3, rel=1e-9)
    assert conversion["rel_delta"] == pytest.approx(1.5, rel=1e-9)


def test_history_has_one_object_per_day_ending_with_the_plain_analysis(cli_lab) -> None:
    history = analyze(cli_lab, "exp", "--history")
    plain = analyze(cli_lab, "exp")

    assert isinstance(history, list)
    assert [h["as_of"] for h in history] == [
        "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05",
    ]  # fmt: skip
    assert history[-1] == plain
    # users per day: control c1..c4 + m until m's conflict on 10-03;
    # treatment from 10-02
    assert [h["users"] for h in history] == [
        {"control": 5, "treatment": 0},
        {"control": 5, "treatment": 4},
        {"control": 4, "treatment": 4},
        {"control": 4, "treatment": 4},
        {"control": 4, "treatment": 4},
    ]
    assert [h["multiple_exposures"] for h in history] == [0, 0, 1, 1, 1]


def test_history_day_agrees_with_as_of_that_day(cli_lab) -> None:
    history = analyze(cli_lab, "exp", "--history")
    as_of = analyze(cli_lab, "exp", "--as-of", "2026-10-02")
    day = history[1]
    assert day["users"] == as_of["users"]
    for metric in ("conversion", "revenue"):
        for key in ("control", "treatment", "abs_delta", "rel_delta"):
            assert result(day, metric)[key] == result(as_of, metric)[key]


def test_history_with_as_of_stops_at_that_day(cli_lab) -> None:
    history = analyze(cli_lab, "exp", "--history", "--as-of", "2026-10-03")
    assert [h["as_of"] for h in history] == ["2026-10-01", "2026-10-02", "2026-10-03"]


def test_all_gives_a_json_array_of_every_experiment(cli_lab) -> None:
    cli_lab.experiment(id="another", primary_metric="revenue", secondary_metrics=None)
    payload = analyze(cli_lab, "--all")
    assert isinstance(payload, list)
    assert [p["experiment"] for p in payload] == ["another", "exp"]
    # "another" has no exposure rows in the log: no users
    assert payload[0]["users"] == {"control": 0, "treatment": 0}


def test_all_with_history_gives_every_day_of_every_experiment(cli_lab) -> None:
    cli_lab.experiment(id="another", start="2026-10-04", secondary_metrics=None)
    payload = analyze(cli_lab, "--all", "--history")
    assert [(p["experiment"], p["as_of"]) for p in payload] == [
        ("another", "2026-10-04"),
        ("another", "2026-10-05"),
        *[("exp", f"2026-10-0{d}") for d in range(1, 6)],
    ]


def test_csv_format_has_one_row_per_metric_and_treatment(cli_lab) -> None:
    code, out, err = run(cli_lab, "analyze", "exp", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["metric"], r["variant"]) for r in rows] == [
        ("conversion", "treatment"),
        ("revenue", "treatment"),
    ]
    assert rows[0]["experiment"] == "exp"
    assert rows[0]["as_of"] == "2026-10-05"
    assert float(rows[0]["control_value"]) == 0.5
    assert float(rows[0]["treatment_value"]) == 0.75
    assert int(rows[0]["control_n"]) == 4
    assert float(rows[1]["rel_delta"]) == pytest.approx(1.0)


def test_table_format_names_the_experiment_and_its_metrics(cli_lab) -> None:
    code, out, err = run(cli_lab, "analyze", "exp", "--format", "table")
    assert code == 0, err
    assert "exp" in out
    assert "2026-10-05" in out
    assert "conversion" in out
    assert "revenue" in out
    assert "raised conversion by 50.0%" in out  # conversion rel_delta 0.5


def test_metrics_option_points_at_a_catalog_elsewhere(cli_lab) -> None:
    moved = cli_lab.root / "catalog.yaml"
    moved.write_text(cli_lab.catalog_path.read_text())
    cli_lab.catalog_path.unlink()
    code, _, err = run(cli_lab, "analyze", "exp")
    assert code == 2
    assert "metrics.yaml" in err
    payload = analyze(cli_lab, "exp", "--metrics", str(moved))
    assert result(payload, "revenue")["control"]["value"] == 7.5


def test_arm_with_fewer_than_two_users_gives_null_p_values(lab) -> None:
    e = lab.event
    lab.events_path = lab.log(
        [
            e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
            e("2026-10-01T09:00:00Z", "b", "exposure", "treatment"),
            e("2026-10-01T10:00:00Z", "b", "order", value=5),
        ]
    )
    lab.experiment(secondary_metrics=["revenue"])
    code, out, err = run(lab, "analyze", "exp")
    assert code == 0, err
    payload = strict_json(out)  # NaN would be refused here
    conversion = result(payload, "conversion")
    assert conversion["control"] == {"n": 1, "value": 0.0}
    assert conversion["treatment"] == {"n": 1, "value": 1.0}
    assert conversion["abs_delta"] == 1.0
    assert conversion["rel_delta"] is None  # control value 0: no relative change
    assert conversion["fixed"]["p_value"] is None
    assert conversion["sequential"]["p_value"] is None
    assert conversion["significant"] is False
    assert conversion["verdict"] == "inconclusive"


def test_history_before_any_exposure_still_is_valid_json(lab) -> None:
    e = lab.event
    lab.events_path = lab.log([e("2026-10-03T09:00:00Z", "a", "exposure", "control")])
    lab.experiment()
    history = analyze(lab, "exp", "--history")
    assert history[0]["users"] == {"control": 0, "treatment": 0}
    assert result(history[0], "conversion")["control"]["value"] is None


def test_as_of_before_the_start_gives_an_empty_analysis(cli_lab) -> None:
    payload = analyze(cli_lab, "exp", "--as-of", "2026-09-30")
    assert payload["as_of"] == "2026-09-30"
    assert payload["users"] == {"control": 0, "treatment": 0}
    assert analyze(cli_lab, "exp", "--history", "--as-of", "2026-09-30") == []


# --- bad input: exit code 2 and the named error on stderr -------------------------


def test_missing_column_exits_2_naming_file_and_column(cli_lab) -> None:
    bad = cli_lab.root / "bad.csv"
    bad.write_text("timestamp,user_id\n2026-10-01T10:00:00Z,a\n")
    cli_lab.events_path = bad
    code, out, err = run(cli_lab, "analyze", "exp")
    assert code == 2
    assert out == ""
    assert str(bad) in err
    assert "event" in err
    assert "missing required column" in err


def test_unknown_experiment_id_exits_2(cli_lab) -> None:
    code, _, err = run(cli_lab, "analyze", "nope")
    assert code == 2
    assert "nope" in err


@pytest.mark.parametrize("day", ["2026-13-01", "yesterday", "01/10/2026"])
def test_bad_as_of_exits_2(cli_lab, day: str) -> None:
    code, _, err = run(cli_lab, "analyze", "exp", "--as-of", day)
    assert code == 2
    assert "--as-of" in err
    assert day in err


def test_config_error_exits_2_with_file_and_line(cli_lab) -> None:
    path = cli_lab.experiments_dir / "exp.yaml"
    path.write_text(path.read_text() + "colour: blue\n")
    lines = path.read_text().splitlines()
    code, _, err = run(cli_lab, "analyze", "exp")
    assert code == 2
    assert f"{path}:{len(lines)}:" in err
    assert "colour" in err


def test_missing_events_file_exits_2(cli_lab) -> None:
    cli_lab.events_path = cli_lab.root / "nowhere.parquet"
    code, _, err = run(cli_lab, "analyze", "exp")
    assert code == 2
    assert "nowhere.parquet" in err


def test_experiment_and_all_together_exit_2(cli_lab) -> None:
    code, _, err = run(cli_lab, "analyze", "exp", "--all")
    assert code == 2
    assert "--all" in err


def test_unknown_format_is_an_argparse_error(cli_lab) -> None:
    code, _, err = run(cli_lab, "analyze", "exp", "--format", "xml")
    assert code == 2
    assert "xml" in err


# --- values of the other metric types, arms and CUPED -----------------------------


def test_nps_and_ratio_values_in_json(lab) -> None:
    e = lab.event
    rows = [e("2026-10-01T09:00:00Z", u, "exposure", v) for u, v in (
        ("c1", "control"), ("c2", "control"), ("c3", "control"), ("c4", "control"),
        ("t1", "treatment"), ("t2", "treatment"),
        ("t3", "treatment"), ("t4", "treatment"),
    )]  # fmt: skip
    rows += [
        # control answers 9, 10, 3 → 2 promoters, 1 detractor: NPS 100·(2 − 1)/3
        e("2026-10-02T09:00:00Z", "c1", "nps_response", value=9),
        e("2026-10-02T09:00:00Z", "c2", "nps_response", value=10),
        e("2026-10-02T09:00:00Z", "c3", "nps_response", value=3),
        # treatment answers 10 and 7 (t2 first said 2) → 1 promoter, 1 passive: NPS 50
        e("2026-10-02T09:00:00Z", "t1", "nps_response", value=10),
        e("2026-10-02T09:00:00Z", "t2", "nps_response", value=2),
        e("2026-10-03T09:00:00Z", "t2", "nps_response", value=7),
        # contacts / orders: control 3 / 2 = 1.5, treatment 1 / 4 = 0.25
        e("2026-10-02T10:00:00Z", "c1", "contact"),
        e("2026-10-02T11:00:00Z", "c1", "contact"),
        e("2026-10-02T12:00:00Z", "c2", "contact"),
        e("2026-10-02T13:00:00Z", "c1", "order", value=1),
        e("2026-10-02T14:00:00Z", "c4", "order", value=1),
        e("2026-10-02T10:00:00Z", "t1", "contact"),
        *[e(f"2026-10-0{d}T10:00:00Z", "t3", "order", value=1) for d in (2, 3, 4, 5)],
    ]
    lab.events_path = lab.log(rows)
    lab.experiment(primary_metric="nps", secondary_metrics=["contacts_per_order"])
    payload = analyze(lab, "exp")

    nps = result(payload, "nps")
    assert nps["control"]["n"] == 3  # responders only
    assert nps["control"]["value"] == pytest.approx(100 / 3, rel=1e-9)
    assert (
        nps["control"]["promoters"],
        nps["control"]["passives"],
        nps["control"]["detractors"],
    ) == (2, 0, 1)
    assert nps["treatment"]["n"] == 2
    assert nps["treatment"]["value"] == pytest.approx(50.0, rel=1e-9)
    assert nps["abs_delta"] == pytest.approx(50 - 100 / 3, rel=1e-9)
    assert nps["rel_delta"] == pytest.approx(50 / (100 / 3) - 1, rel=1e-9)  # 0.5
    ratio = result(payload, "contacts_per_order")
    assert ratio["control"] == {"n": 4, "value": 1.5}
    assert ratio["treatment"] == {"n": 4, "value": 0.25}
    assert ratio["abs_delta"] == pytest.approx(-1.25, rel=1e-9)
    assert ratio["rel_delta"] == pytest.approx(0.25 / 1.5 - 1, rel=1e-9)


def test_configured_control_is_compared_with_every_other_arm(lab) -> None:
    e = lab.event
    rows = []
    # a: 2 users, both convert; b (the control): 1 of 2; c: 0 of 2
    for variant, converted in (("a", 2), ("b", 1), ("c", 0)):
        for i in range(2):
            rows.append(e("2026-10-01T10:00:00Z", f"{variant}{i}", "exposure", variant))
            if i < converted:
                rows.append(
                    e("2026-10-02T10:00:00Z", f"{variant}{i}", "order", value=1)
                )
    lab.events_path = lab.log(rows)
    lab.experiment(variants=["a", "b", "c"], control="b")
    payload = analyze(lab, "exp")

    assert payload["users"] == {"a": 2, "b": 2, "c": 2}
    rows_out = [
        (
            r["variant"],
            r["control"]["value"],
            r["treatment"]["value"],
            r["abs_delta"],
            r["rel_delta"],
        )
        for r in payload["results"]
    ]
    assert rows_out == [("a", 0.5, 1.0, 0.5, 1.0), ("c", 0.5, 0.0, -0.5, -1.0)]


def test_cuped_days_adds_a_cuped_block_to_each_result(lab) -> None:
    e = lab.event
    rows = []
    # pre-period revenue differs between users so the covariate has variance
    for i, variant in enumerate(["control", "treatment"] * 3):
        rows += [
            e("2026-09-28T10:00:00Z", f"u{i}", "order", value=5 * (i + 1)),
            e("2026-10-01T10:00:00Z", f"u{i}", "exposure", variant),
            e("2026-10-02T10:00:00Z", f"u{i}", "order", value=6 * (i + 1) + i % 2),
        ]
    lab.events_path = lab.log(rows)
    lab.experiment(primary_metric="revenue", cuped_days=7)
    payload = analyze(lab, "exp")
    (row,) = payload["results"]
    assert 0.0 <= row["cuped"]["variance_reduction"] <= 1.0
    # the plain values stay the raw means: control (6 + 18 + 30) / 3 = 18,
    # treatment (13 + 25 + 37) / 3 = 25
    assert row["control"]["value"] == pytest.approx(18.0)
    assert row["treatment"]["value"] == pytest.approx(25.0)


def test_users_and_srm_count_exposed_users_even_with_only_nps_metrics(lab) -> None:
    e = lab.event
    rows = [e("2026-10-01T10:00:00Z", f"c{i}", "exposure", "control") for i in range(3)]
    rows += [
        e("2026-10-01T10:00:00Z", f"t{i}", "exposure", "treatment") for i in range(3)
    ]
    rows += [
        e("2026-10-01T11:00:00Z", "c0", "nps_response", value=9),
        e("2026-10-01T11:00:00Z", "t0", "nps_response", value=9),
        e("2026-10-01T11:00:00Z", "t1", "nps_response", value=9),
    ]
    lab.events_path = lab.log(rows)
    lab.experiment(primary_metric="nps")
    payload = analyze(lab, "exp")
    # 3 exposed users per arm, of whom 1 and 2 answered the survey
    assert payload["users"] == {"control": 3, "treatment": 3}
    assert payload["srm"]["p_value"] == pytest.approx(1.0)  # 3 vs 3 on 50/50
    assert result(payload, "nps")["control"]["n"] == 1
    assert result(payload, "nps")["treatment"]["n"] == 2


def test_all_over_a_folder_without_experiments_is_not_an_internal_error(lab) -> None:
    lab.events_path = lab.log(
        [lab.event("2026-10-01T10:00:00Z", "a", "exposure", "control")]
    )  # the folder holds only metrics.yaml
    code, out, err = run(lab, "analyze", "--all")
    assert "internal error" not in err
    assert code in (0, 2)
    if code == 0:
        assert strict_json(out) == []


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_all_analyses_the_good_configs_and_names_each_bad_one(
    cli_lab, fmt: str
) -> None:
    cli_lab.experiment(id="another", primary_metric="revenue", secondary_metrics=None)
    broken = cli_lab.experiments_dir / "broken.yaml"
    broken.write_text("id: broken\nstart: 2026-02-30\n")
    listed = cli_lab.experiments_dir / "listed.yaml"
    listed.write_text("- a\n- b\n")
    code, out, err = run(cli_lab, "analyze", "--all", "--format", fmt)
    assert code == 2
    assert err.splitlines() == [
        f"error: {broken}:2: start: 2026-02-30 is not a date",
        f"error: {listed}:1: experiment must be a mapping of keys, got a list",
    ]
    if fmt == "json":
        assert [p["experiment"] for p in strict_json(out)] == ["another", "exp"]
    else:
        assert "another" in out
        assert "exp" in out
        assert "broken" not in out


def test_all_reports_the_bad_configs_even_when_the_log_is_bad(cli_lab) -> None:
    (cli_lab.experiments_dir / "broken.yaml").write_text("id: [\n")
    cli_lab.events_path = cli_lab.root / "nowhere.parquet"
    code, out, err = run(cli_lab, "analyze", "--all")
    assert code == 2
    assert out == ""
    assert [line.split(":")[0] for line in err.splitlines()] == ["error", "error"]
    assert "broken.yaml:2: invalid YAML" in err
    assert "nowhere.parquet" in err


def test_all_with_a_bad_catalog_stops_everything(cli_lab) -> None:
    cli_lab.catalog_path.write_text("conversion:\n  type: proportion\n  type: mean\n")
    code, out, err = run(cli_lab, "analyze", "--all")
    assert code == 2
    assert out == ""
    assert f"{cli_lab.catalog_path}:3: key 'type' given twice (first on line 2)" in err


def test_internal_fault_is_one_line_with_a_hint(cli_lab, monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("cxlab.cli.summarize_all", crash)
    code, out, err = run(cli_lab, "analyze", "exp")
    assert code == 1
    assert out == ""
    assert err == (
        "internal error: ZeroDivisionError: float division by zero "
        "(please report it; rerun with --debug for the traceback)\n"
    )


def test_debug_prints_the_traceback_of_an_internal_fault(cli_lab, monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("cxlab.cli.summarize_all", crash)
    code, _, err = run(cli_lab, "analyze", "exp", "--debug")
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError" in err


def test_a_path_the_system_refuses_exits_2_naming_it(tmp_path) -> None:
    out = tmp_path / "not-a-folder"
    out.write_text("")
    args = ["--out", str(out / "events.parquet"), "--users", "1000"]
    code, _, err = run_cli("sample", *args)
    assert code == 2
    assert f"error: {out}: File exists" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "10"], "--users must be at least 1,000"),
        (["--seed", "-1"], "--seed must be 0 or more, got -1"),
    ],
)
def test_bad_sample_arguments_exit_2(tmp_path, args, message) -> None:
    code, _, err = run_cli("sample", "--out", str(tmp_path / "events.parquet"), *args)
    assert code == 2
    assert err == f"error: {message}\n"


def test_one_experiment_runs_beside_a_broken_neighbour(cli_lab) -> None:
    (cli_lab.experiments_dir / "broken.yaml").write_text("id: [\n")
    code, out, err = run(cli_lab, "analyze", "exp")
    assert code == 0, err
    assert strict_json(out)["experiment"] == "exp"
    # The broken file itself, asked for by name, is reported with its line.
    code, out, err = run(cli_lab, "analyze", "broken")
    assert code == 2
    assert "broken.yaml:2: invalid YAML" in err
