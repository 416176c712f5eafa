"""``python -m cxlab check``: the data-health report of a log against the configs.

The log (experiment ``exp``, 2026-10-01 .. 2026-10-05), 10 rows of 5 users:

* a: control on 10-01, an order on 09-30 (before its exposure) and one on 10-02;
* b: control on 10-01, then treatment on 10-02 → multiple exposures;
* c: treatment on 10-02, an NPS answer on 10-03;
* d: treatment on 10-07, after the end → exposure row outside the window;
* e: exposure to "ghost" (no config) and a page view.

By hand: events by type: exposure 6 rows, order 2, nps_response 1, page_view 1. Per
variant of exp: control 2 rows (a, b), 2 users, 1 analysed (a); treatment 3 rows
(b, c, d), 2 in-window users (b, c), 1 analysed (c). Set aside: 1 exposure row of an
unconfigured experiment, 1 outside the window, 3 rows of users in no analysed
experiment (d's exposure, e's two rows), 1 event before first exposure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def health_lab(lab):
    e = lab.event
    lab.events_path = lab.log(
        [
            e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
            e("2026-09-30T09:00:00Z", "a", "order", value=5),
            e("2026-10-02T09:00:00Z", "a", "order", value=7),
            e("2026-10-01T09:00:00Z", "b", "exposure", "control"),
            e("2026-10-02T09:00:00Z", "b", "exposure", "treatment"),
            e("2026-10-02T09:00:00Z", "c", "exposure", "treatment"),
            e("2026-10-03T09:00:00Z", "c", "nps_response", value=9),
            e("2026-10-07T09:00:00Z", "d", "exposure", "treatment"),
            e("2026-10-01T09:00:00Z", "e", "exposure", "x", experiment_id="ghost"),
            e("2026-10-01T10:00:00Z", "e", "page_view"),
        ]
    )
    lab.experiment(secondary_metrics=["nps"])
    return lab


def check(lab, *args: str) -> tuple[int, str, str]:
    events, experiments = str(lab.events_path), str(lab.experiments_dir)
    return run_cli("check", "--events", events, "--experiments", experiments, *args)


def test_check_json_reports_rows_users_and_events_by_type(health_lab) -> None:
    code, out, err = check(health_lab, "--format", "json")
    assert code == 0, err
    report = json.loads(out)

    assert report["files"] == 1
    assert report["rows"] == 10
    assert report["users"] == 5
    assert report["first_event"].startswith("2026-09-30T09:00:00")
    assert report["last_event"].startswith("2026-10-07T09:00:00")
    by_type = {r["event"]: r["rows"] for r in report["events_by_type"]}
    assert by_type == {"exposure": 6, "order": 2, "nps_response": 1, "page_view": 1}


def test_check_json_reports_exposures_per_experiment_and_variant(health_lab) -> None:
    _, out, _ = check(health_lab, "--format", "json")
    (exp,) = json.loads(out)["experiments"]

    assert exp["experiment"] == "exp"
    assert exp["as_of"] == "2026-10-05"
    assert exp["multiple_exposures"] == 1
    assert exp["exposures_outside_window"] == 1
    assert exp["pre_exposure_events"] == 1
    variants = {
        v["variant"]: (v["exposure_rows"], v["users"], v["analysed"])
        for v in exp["variants"]
    }
    assert variants == {"control": (2, 2, 1), "treatment": (3, 2, 1)}


def test_check_json_counts_set_aside_rows_by_reason(health_lab) -> None:
    _, out, _ = check(health_lab, "--format", "json")
    assert json.loads(out)["set_aside"] == {
        "exposure_rows_of_other_experiments": 1,
        "exposure_rows_outside_window": 1,
        "events_of_users_in_no_analysed_experiment": 3,
        "events_before_first_exposure": 1,
    }


def test_check_text_report_shows_the_same_figures(health_lab) -> None:
    code, out, err = check(health_lab)
    assert code == 0, err
    assert str(health_lab.events_path) in out
    assert "rows: 10" in out
    assert "users: 5" in out
    for event in ("exposure", "order", "nps_response", "page_view"):
        assert event in out
    exp_line = next(
        line for line in out.splitlines() if line.strip().startswith("exp ")
    )
    assert "1 multiple-exposure" in exp_line
    assert "1 exposure rows outside" in exp_line
    control = next(
        line for line in out.splitlines() if line.strip().startswith("control")
    )
    assert control.split()[1:2] == ["2"]  # exposure rows
    # the ledger, the one account of the rows set aside: they add up to the log's
    ledger = out.split("in one bucket:")[1].strip().splitlines()
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in ledger
        if not line.strip().startswith("e.g.")
    }
    assert counts["total"] == 10 == sum(counts.values()) - counts["total"]
    assert (counts["multiple_exposures"], counts["used"]) == (2, 4)
    # each bucket with rows set aside is followed by its examples
    assert sum(line.strip().startswith("e.g.") for line in ledger) == 6
    assert "by reason" not in out  # no second, overlapping account


def test_check_of_a_bad_log_exits_2_naming_the_problem(health_lab) -> None:
    bad = health_lab.log([health_lab.event("soon", "a", "order", value=1)], "bad.csv")
    health_lab.events_path = bad
    code, out, err = check(health_lab)
    assert code == 2
    assert out == ""
    assert str(bad) in err
    assert "timestamp" in err


def test_python_m_cxlab_check_runs_as_a_program(health_lab) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cxlab",
            "check",
            "--events",
            str(health_lab.events_path),
            "--experiments",
            str(health_lab.experiments_dir),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=health_lab.root,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 10


def test_a_row_set_aside_for_two_experiments_is_counted_once(lab) -> None:
    e = lab.event
    lab.events_path = lab.log(
        [
            e("2026-09-30T09:00:00Z", "a", "order", value=5),  # the one set-aside row
            e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
            e("2026-10-01T09:00:00Z", "a", "exposure", "green", experiment_id="other"),
        ]
    )
    lab.experiment()
    lab.experiment(id="other", variants=["green", "blue"])
    code, out, err = check(lab, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [x["pre_exposure_events"] for x in report["experiments"]] == [1, 1]
    # the log has 3 rows, and only one of them lies before a first exposure
    assert report["set_aside"]["events_before_first_exposure"] == 1


def test_check_with_no_experiment_configs_still_reports_the_log(lab) -> None:
    e = lab.event
    lab.events_path = lab.log(
        [
            e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
            e("2026-10-01T11:00:00Z", "a", "page_view"),
        ]
    )  # the folder holds only metrics.yaml
    code, out, err = check(lab, "--format", "json")
    assert "internal error" not in err
    assert code == 0
    report = json.loads(out)
    assert (report["rows"], report["users"], report["experiments"]) == (2, 1, [])


def test_set_aside_rows_come_with_their_first_examples(health_lab):
    code, out, _ = check(health_lab, "--format", "json")
    assert code == 0
    examples = json.loads(out)["set_aside_examples"]
    # d's exposure on 10-07 is outside exp's window; e's exposure is to "ghost".
    outside = examples["exposure_rows_outside_window"]
    assert [(r["user_id"], r["variant"]) for r in outside] == [("d", "treatment")]
    assert [
        r["experiment_id"] for r in examples["exposure_rows_of_other_experiments"]
    ] == ["ghost"]
    # a's order on 09-30 precedes a's first exposure on 10-01.
    before = examples["events_before_first_exposure"]
    assert [(r["user_id"], r["event"]) for r in before] == [("a", "order")]
    # d and e are in no analysed experiment: 1 and 2 rows.
    no_experiment = examples["events_of_users_in_no_analysed_experiment"]
    assert {r["user_id"]: r["rows"] for r in no_experiment} == {"d": 1, "e": 2}
