"""Fuzzing: a valid small CSV or NDJSON log with its bytes mutated, through the CLI.

Bytes are flipped, inserted (control characters, quotes, separators, brackets, a
byte-order mark, bytes that are never UTF-8, numbers out of range) and deleted.
Whatever comes out, the CLI exits 0 (still a valid log) or 2 (a named error),
never 1 and never shows a traceback. The examples are derandomized: the same ones
every run. (Speed is measured in bench/, never asserted here.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Lab, cli, run_cli

PALETTE = [
    b"\x00",
    b"\x1b[31m",
    b"\x07",
    b'"',
    b",",
    b"\n",
    b"\r\n",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"{",
    b"}",
    b"[1]",
    b"NaN",
    b"inf",
    b"-1",
    b"11",
    b"7.5",
    b"exposure",
    b":",
]
ROWS = [
    ("2026-10-01T09:00:00Z", "a", "exposure", "exp", "control", None),
    ("2026-10-02T09:00:00Z", "a", "order", None, None, 12.5),
    ("2026-10-01T10:00:00Z", "b", "exposure", "exp", "treatment", None),
    ("2026-10-03T10:00:00Z", "b", "nps_response", None, None, 9),
    ("2026-10-03T11:00:00Z", "b", "contact", None, None, None),
    ("2026-10-02T12:00:00Z", "c", "exposure", "exp", "control", None),
]
KEYS = ("timestamp", "user_id", "event", "experiment_id", "variant", "value")

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.sampled_from(PALETTE)),
    st.tuples(
        st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=4)
    ),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
)


def mutate(data: bytes, mutations: list) -> bytes:
    out = bytearray(data)
    for kind, at, arg in mutations:
        at %= max(len(out), 1)
        if kind == "flip" and out:
            out[at] ^= arg
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at : at + arg]
    return bytes(out)


def valid_log(fmt: str) -> bytes:
    import json

    if fmt == "csv":
        lines = [",".join(KEYS)]
        lines += [",".join("" if v is None else str(v) for v in row) for row in ROWS]
    else:
        lines = [
            json.dumps({k: v for k, v in zip(KEYS, row, strict=True) if v is not None})
            for row in ROWS
        ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def fuzz_lab(tmp_path_factory) -> Lab:
    lab = Lab(tmp_path_factory.mktemp("fuzz"))
    lab.experiment(secondary_metrics=["nps", "contacts_per_order"])
    return lab


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_the_valid_log_passes(fuzz_lab, fmt: str) -> None:
    path = fuzz_lab.root / f"valid.{fmt}"
    path.write_bytes(valid_log(fmt))
    args = ["--events", str(path), "--experiments", str(fuzz_lab.experiments_dir)]
    cli("check", *args)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_mutated_log_exits_0_or_2_without_a_traceback(fuzz_lab, fmt: str) -> None:
    path: Path = fuzz_lab.root / f"fuzzed.{fmt}"
    valid = valid_log(fmt)

    @settings(
        max_examples=60,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        mutations=st.lists(mutation, min_size=1, max_size=4),
        command=st.sampled_from(["check", "analyze"]),
    )
    def run(mutations: list, command: str) -> None:
        path.write_bytes(mutate(valid, mutations))
        args = ["analyze", "exp"] if command == "analyze" else ["check"]
        experiments = str(fuzz_lab.experiments_dir)
        code, _, err = run_cli(
            *args, "--events", str(path), "--experiments", experiments
        )
        assert code in (0, 2), err
        assert "Traceback" not in err
        assert not any(ord(ch) < 32 and ch != "\n" for ch in err), repr(err)

    run()
