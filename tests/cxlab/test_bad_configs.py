"""Bad configs through the real command line: exit 2, ``file:line``, the key.

A corpus of broken experiment YAML and metric catalogs (CONTRACT §2 end: the YAML
rules; §3; §4 exit codes), each run with ``python -m cxlab analyze`` in-process; then
hypothesis mutates the bytes of a valid experiment and a valid catalog and asserts
that the command line only ever answers 0 or 2, never an internal fault, in bounded
time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CATALOG, Lab, run_cli

# Line numbers of the corpus below refer to this text.
EXPERIMENT = """\
id: exp
name: Bad configs
start: 2026-10-01
end: 2026-10-05
variants:
  - {id: control, weight: 0.5}
  - {id: treatment, weight: 0.5}
primary_metric: conversion
secondary_metrics: [revenue, nps, contacts_per_order]
guardrail_metrics: [phone_contact_rate]
dimensions: [platform]
"""
NEXT = 12  # the line an appended key lands on

ROWS = [
    ("2026-10-01T09:00:00Z", "c1", "exposure", "control", None, "ios", None),
    ("2026-10-01T09:00:00Z", "c2", "exposure", "control", None, "web", None),
    ("2026-10-01T09:00:00Z", "t1", "exposure", "treatment", None, "ios", None),
    ("2026-10-01T09:00:00Z", "t2", "exposure", "treatment", None, "web", None),
    ("2026-10-02T09:00:00Z", "c1", "order", None, 10, None, None),
    ("2026-10-02T09:00:00Z", "t1", "order", None, 30, None, None),
    ("2026-10-02T10:00:00Z", "t2", "order", None, 20, None, None),
    ("2026-10-03T09:00:00Z", "c2", "contact", None, None, None, "phone"),
    ("2026-10-03T09:00:00Z", "t1", "contact", None, None, None, "chat"),
    ("2026-10-04T09:00:00Z", "c1", "nps_response", None, 9, None, None),
    ("2026-10-04T09:00:00Z", "t2", "nps_response", None, 6, None, None),
]


def write_lab(lab: Lab) -> Lab:
    """The corpus's lab: the shared catalog, a small log and a valid experiment."""
    lab.events_path = lab.log(
        [
            lab.event(ts, user, event, variant, value, platform=platform, channel=ch)
            for ts, user, event, variant, value, platform, ch in ROWS
        ]
    )
    (lab.experiments_dir / "exp.yaml").write_text(EXPERIMENT)
    return lab


def analyze(lab: Lab, *args: str) -> tuple[int, str, str]:
    """``python -m cxlab analyze ARGS`` on the lab's log and experiments."""
    events, experiments = str(lab.events_path), str(lab.experiments_dir)
    return run_cli("analyze", *args, "--events", events, "--experiments", experiments)


def replace(old: str, new: str) -> bytes:
    assert old in EXPERIMENT
    return EXPERIMENT.replace(old, new).encode()


def append(text: str) -> bytes:
    return (EXPERIMENT + text).encode()


# (case id, experiment bytes, line, what the message must name)
EXPERIMENT_CASES = [
    ("anchor", append("tags: &t [a]\n"), NEXT, "anchor '&t'"),
    ("alias", replace("name: Bad configs", "name: *n"), 2, "alias '*n'"),
    (
        "python-tag",
        append("tags: !!python/object/apply:os.system [echo]\n"),
        NEXT,
        "tag 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    ("local-tag", replace("name: Bad configs", "name: !secret x"), 2, "tag '!secret'"),
    ("merge-key", append("<<: {alpha: 0.1}\n"), NEXT, "merge key '<<'"),
    (
        "key-twice",
        append("end: 2026-10-09\n"),
        NEXT,
        "key 'end' given twice (first on line 4)",
    ),
    ("complex-key", append("? [a, b]\n: 1\n"), NEXT, "a key must be a name"),
    ("flow-complex-key", append("{a: 1}: 2\n"), NEXT, "a key must be a name"),
    ("deep", append("tags: " + "[" * 40 + "]" * 40 + "\n"), NEXT, "nested deeper"),
    (
        "latin-1",
        replace("Bad configs", "Caf\xe9").decode().encode("latin-1"),
        2,
        "0xe9",
    ),
    ("control-char", replace("Bad configs", "a\x07b"), 2, "#x0007"),
    ("nul", append("\x00\n"), NEXT, "#x0000"),
    ("tab-indent", replace("  - {id: treatment", "\t- {id: treatment"), 7, "YAML"),
    (
        "start-feb-30",
        replace("start: 2026-10-01", "start: 2026-02-30"),
        3,
        "start: 2026-02-30 is not a date",
    ),
    ("end-day-32", replace("end: 2026-10-05", "end: 2026-10-32"), 4, "end: 2026"),
    ("end-before-start", replace("end: 2026-10-05", "end: 2026-09-05"), 4, "end"),
    ("planned-1e400", append("planned_users: 1e400\n"), NEXT, "planned_users"),
    (
        "planned-float-inf",
        append("planned_users: 1.0e+400\n"),
        NEXT,
        "planned_users: 1.0e+400 is not a finite number",
    ),
    ("planned-1e13", append("planned_users: 10000000000000\n"), NEXT, "planned_users"),
    ("huge-integer", append("planned_users: " + "9" * 5000 + "\n"), NEXT, "range"),
    ("tuning-0", append("sequential_tuning: 0\n"), NEXT, "sequential_tuning"),
    (
        "tuning-over-1e12",
        append("sequential_tuning: 1000000000001\n"),
        NEXT,
        "sequential_tuning",
    ),
    ("alpha-nan", append("alpha: .nan\n"), NEXT, "alpha: .nan is not a finite"),
    ("alpha-0.6", append("alpha: 0.6\n"), NEXT, "'alpha'"),
    ("alpha-0", append("alpha: 0\n"), NEXT, "'alpha'"),
    ("alpha-text", append("alpha: five percent\n"), NEXT, "'alpha'"),
    ("cuped-366", append("cuped_days: 366\n"), NEXT, "'cuped_days'"),
    ("cuped-fraction", append("cuped_days: 1.5\n"), NEXT, "'cuped_days'"),
    ("prior-sd-0", append("bayes_prior: {mean: 0, sd: 0}\n"), NEXT, "'sd'"),
    ("prior-sd-negative", append("bayes_prior: {mean: 0, sd: -1}\n"), NEXT, "'sd'"),
    (
        "prior-mean-inf",
        append("bayes_prior: {mean: .inf, sd: 1}\n"),
        NEXT,
        "mean: .inf is not a finite number",
    ),
    ("prior-sd-underflow", append("bayes_prior: {sd: 1.0e-300}\n"), NEXT, "'sd'"),
    ("experiment-id", replace("id: exp", "id: Exp One"), 1, "'Exp One'"),
    (
        "variant-ids-with-shares",
        replace(
            EXPERIMENT[EXPERIMENT.index("variants:") : EXPERIMENT.index("primary")],
            "variants: [control 50%, treatment 50%]\n",
        ),
        5,
        "invalid variant id 'control 50%'",
    ),
    ("variant-id-65", replace("id: treatment", "id: " + "t" * 65), 7, "t" * 65),
    ("variant-id-underscore", replace("id: control", "id: _control"), 6, "_control"),
    (
        "columns-two-onto-one",
        append("columns: {user_id: customer, event: customer}\n"),
        NEXT,
        "'columns' maps user_id and event onto the one column 'customer'",
    ),
    ("columns-unknown", append("columns: {customer: user_id}\n"), NEXT, "customer"),
    ("unknown-key", append("colour: blue\n"), NEXT, "unknown key 'colour'"),
    ("escaped-key", append('"col\\eour": blue\n'), NEXT, "col\\x1bour"),
    (
        "variants-text",
        replace(
            EXPERIMENT[EXPERIMENT.index("variants:") : EXPERIMENT.index("primary")],
            "variants: control\n",
        ),
        5,
        "'variants'",
    ),
    (
        "variants-one-arm",
        replace("  - {id: treatment, weight: 0.5}\n", ""),
        5,
        "'variants'",
    ),
    (
        "primary-mapping",
        replace("primary_metric: conversion", "primary_metric: {a: 1}"),
        8,
        "primary_metric",
    ),
    ("decision-unknown", append("decision: frequentist\n"), NEXT, "'decision'"),
    (
        "weights-sum",
        replace("treatment, weight: 0.5", "treatment, weight: 0.6"),
        5,
        "sum to 1",
    ),
    ("unknown-metric", replace("[revenue, nps", "[nope, nps"), 9, "metric 'nope'"),
    ("empty-file", b"", 1, "experiment must be a mapping of keys, got nothing"),
    ("top-level-list", b"- id: exp\n- start: 2026-10-01\n", 1, "got a list"),
    ("top-level-text", b"just some words\n", 1, "experiment must be a mapping"),
]


@pytest.mark.parametrize(
    ("text", "line", "named"),
    [case[1:] for case in EXPERIMENT_CASES],
    ids=[case[0] for case in EXPERIMENT_CASES],
)
def test_bad_experiment_exits_2_with_file_line_and_key(
    lab, text: bytes, line: int, named: str
) -> None:
    write_lab(lab)
    path = lab.experiments_dir / "exp.yaml"
    path.write_bytes(text)
    code, out, err = analyze(lab, "exp")
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {path}:{line}: ")
    assert named in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_experiment_id_used_by_two_files_names_the_second_file_and_line(lab) -> None:
    write_lab(lab)
    other = lab.experiments_dir / "other.yaml"
    other.write_text("# the same id again\n" + EXPERIMENT)
    code, _, err = analyze(lab, "exp")
    assert code == 2
    assert err == (
        f"error: {other}:2: experiment id 'exp' is also used by "
        f"{lab.experiments_dir / 'exp.yaml'}\n"
    )


VALID_METRIC = (
    "conversion:\n  type: proportion\n  event: order\n  direction: increase\n"
)
# (case id, catalog bytes, line, what the message must name)
CATALOG_CASES = [
    ("null-metric", b"conversion:\n", 1, "metric 'conversion' must be a mapping"),
    (
        "metric-list",
        b"conversion: [a, b]\n",
        1,
        "metric 'conversion' must be a mapping",
    ),
    (
        "metric-id-spaces",
        (VALID_METRIC + "Conversion Rate:\n  type: proportion\n").encode(),
        5,
        "invalid metric id 'Conversion Rate'",
    ),
    (
        "metric-id-number",
        (VALID_METRIC + "12: {type: proportion}\n").encode(),
        5,
        "invalid metric id 12",
    ),
    (
        "metric-twice",
        (VALID_METRIC + VALID_METRIC).encode(),
        5,
        "key 'conversion' given twice (first on line 1)",
    ),
    (
        "key-twice",
        (VALID_METRIC + "  event: visit\n").encode(),
        5,
        "key 'event' given twice",
    ),
    ("unknown-key", (VALID_METRIC + "  colour: blue\n").encode(), 5, "'colour'"),
    (
        "unknown-type",
        VALID_METRIC.replace("proportion", "median").encode(),
        2,
        "'type'",
    ),
    (
        "anchor-for-reuse",
        b"base: &base {type: proportion}\nconversion:\n  <<: *base\n",
        1,
        "anchor '&base'",
    ),
    (
        "window-huge",
        (VALID_METRIC + "  window_days: 10000000\n").encode(),
        5,
        "'window_days'",
    ),
    (
        "window-inf",
        (VALID_METRIC + "  window_days: .inf\n").encode(),
        5,
        "window_days: .inf",
    ),
    (
        "filter-list",
        (VALID_METRIC + "  filter: {channel: [a, b]}\n").encode(),
        5,
        "filter",
    ),
    ("latin-1", (VALID_METRIC + "  name: Caf\xe9\n").encode("latin-1"), 5, "not UTF-8"),
    ("empty-file", b"", 1, "metric catalog must be a mapping"),
    ("top-level-list", b"- conversion\n", 1, "metric catalog must be a mapping"),
]


@pytest.mark.parametrize(
    ("text", "line", "named"),
    [case[1:] for case in CATALOG_CASES],
    ids=[case[0] for case in CATALOG_CASES],
)
def test_bad_catalog_exits_2_with_file_line_and_key(
    lab, text: bytes, line: int, named: str
) -> None:
    write_lab(lab)
    lab.catalog_path.write_bytes(text)
    code, out, err = analyze(lab, "--all")
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {lab.catalog_path}:{line}: ")
    assert named in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_python_m_cxlab_exits_2_on_a_bad_config(lab) -> None:
    write_lab(lab)
    path = lab.experiments_dir / "exp.yaml"
    path.write_text(EXPERIMENT.replace("start: 2026-10-01", "start: 2026-02-30"))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "cxlab", "analyze", "exp"),
            *("--events", str(lab.events_path)),
            *("--experiments", str(lab.experiments_dir)),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"error: {path}:3: start: 2026-02-30 is not a date\n"


def test_the_corpus_starts_from_configs_that_analyse(lab) -> None:
    write_lab(lab)
    code, out, err = analyze(lab, "exp")
    assert (code, err) == (0, "")
    assert '"experiment": "exp"' in out


# --- fuzzing: mutated bytes never make an internal fault ----------------------------

FRAGMENTS = [
    b"&a ", b"*a", b"!!python/object:os.system ", b"!tag ", b": :", b"\t", b"\x00",
    b"? ", b"- ", b"[", b"]", b"{", b"}", b",", b"\n", b"  ", b"'", b'"', b"#", b"|",
    b"<<: ", b"---\n", b"%YAML 1.1\n", b"\xe9", b"\xef\xbb\xbf", b"\x1b[31m", b"~",
]  # fmt: skip
VALUES = [
    b"0", b"-1", b"0.5", b"0.25", b"1", b"2", b"365", b"1e400", b"1.0e+400", b".nan",
    b"-.inf", b"99999999999999999999", b"1000000000000", b"0x1F", b"1:30", b"yes",
    b"~", b"''", b"=", b"[]", b"{}", b"[a, a]", b"{sd: 0.3}", b"{mean: 0, sd: 1e-7}",
    b"2026-10-01", b"2026-10-06", b"2026-02-30", b"2026-10-01 10:00:00", b"x" * 70,
    b"control", b"treatment", b"conversion", b"[conversion, conversion]", b"nps",
    b"[platform, platform]", b"[channel]", b"{user_id: customer}", b"group", b"bh",
    b"bayesian", b"fixed", b"ratio", b"mean", b"count", b"max", b"decrease",
    b"{channel: phone}", b"{event: order}",
]  # fmt: skip


@st.composite
def mutations(draw: st.DrawFn, base: bytes) -> bytes:
    """The base bytes with one to three edits.

    An edit replaces a line's value with a plausible or hostile one (so that many
    examples still load and reach the analysis), splices a YAML fragment in at a
    line start or after a colon, or flips, inserts or deletes bytes.
    """
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "value", "splice", "bytes"]))
        colons = [i + 2 for i in range(len(data)) if data[i : i + 2] == b": "]
        starts = [0, *(i + 1 for i in range(len(data)) if data[i] == ord("\n"))]
        if kind == "value" and colons:
            at = draw(st.sampled_from(colons))
            end = data.find(b"\n", at)
            data[at : end if end >= 0 else len(data)] = draw(st.sampled_from(VALUES))
        elif kind == "splice":
            at = draw(st.sampled_from(colons + starts))
            data[at:at] = draw(st.sampled_from(FRAGMENTS))
        else:
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            action = draw(st.sampled_from(["flip", "insert", "delete"]))
            if action == "delete":
                del data[at : at + draw(st.integers(1, 24))]
            elif action == "insert" or not data:
                data[at:at] = bytes([draw(st.integers(0, 255))])
            else:
                data[at] = draw(st.integers(0, 255))
    return bytes(data)


# Plausible and edge values per experiment key (None: leave the key out), so that
# most variations load and reach the analysis.
OPTIONS: dict[str, list[Any]] = {
    "start": ["2026-10-01", "2026-10-02", "2026-10-06", "2020-01-01"],
    "end": [None, "2026-10-01", "2026-10-03", "2026-10-31"],
    "variants": [
        ["control", "treatment"],
        ["control", "treatment", "other"],
        ["treatment", "control"],
        [{"id": "control", "weight": 0.999999}, {"id": "treatment", "weight": 1e-6}],
    ],
    "control": [None, "control", "treatment"],
    "primary_metric": [
        "conversion",
        ["nps", "contacts_per_order"],
        ["max_order", "last_order", "conversion_2d"],
    ],
    "secondary_metrics": [None, [], ["revenue", "orders", "phone_contact_rate"]],
    "guardrail_metrics": [None, ["conversion"], ["contacts_per_order", "nps"]],
    "alpha": [0.5, 1e-6, 1e-300],
    "decision": ["sequential", "fixed", "bayesian"],
    "dimensions": [None, [], ["channel"], ["platform", "nowhere"]],
    "status": [None, "shipped", "rolled_back"],
    "planned_users": [None, 2, 10**12],
    "sequential_tuning": [2, 10**12],
    "sequential_method": ["mixture", "group"],
    "bayes_prior": [
        None,
        {"mean": 0, "sd": 1e-6},
        {"mean": 1e6, "sd": 1e6},
        {"mean": -1e6, "sd": 1e-6},
    ],
    "correction": ["holm", "bh", "none"],
    "cuped_days": [0, 1, 365],
    "columns": [None, {"value": "value"}, {"user_id": "customer"}],
}


@st.composite
def variations(draw: st.DrawFn) -> bytes:
    """The valid experiment with one to six keys set to plausible or edge values."""
    data = yaml.safe_load(EXPERIMENT)
    keys = st.lists(
        st.sampled_from(sorted(OPTIONS)), min_size=1, max_size=6, unique=True
    )
    for key in draw(keys):
        value = draw(st.sampled_from(OPTIONS[key]))
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return yaml.safe_dump(data, sort_keys=False).encode()


FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=5000,  # ms per example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def fuzz_lab(tmp_path_factory) -> Lab:
    return write_lab(Lab(tmp_path_factory.mktemp("fuzz")))


def assert_no_fault(code: int, err: str) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    assert "internal error" not in err


@FUZZ
@given(text=mutations(EXPERIMENT.encode()))
def test_mutated_experiment_yaml_exits_0_or_2(fuzz_lab, text: bytes) -> None:
    fuzz_lab.catalog_path.write_text(CATALOG)
    path = fuzz_lab.experiments_dir / "exp.yaml"
    path.write_bytes(text)
    code, _, err = analyze(fuzz_lab, str(path))
    assert_no_fault(code, err)


@settings(FUZZ, max_examples=60)  # each example that loads is analysed: slower
@given(text=variations())
def test_experiment_with_edge_values_exits_0_or_2(fuzz_lab, text: bytes) -> None:
    fuzz_lab.catalog_path.write_text(CATALOG)
    path = fuzz_lab.experiments_dir / "exp.yaml"
    path.write_bytes(text)
    code, _, err = analyze(fuzz_lab, str(path))
    assert_no_fault(code, err)


@FUZZ
@given(text=mutations(CATALOG.encode()))
def test_mutated_metric_catalog_exits_0_or_2(fuzz_lab, text: bytes) -> None:
    (fuzz_lab.experiments_dir / "exp.yaml").write_text(EXPERIMENT)
    fuzz_lab.catalog_path.write_bytes(text)
    code, _, err = analyze(fuzz_lab, "--all")
    assert_no_fault(code, err)
