"""Logs that break CONTRACT §1, each through the real CLI: exit 2 and a named error.

Every bad log is run through ``analyze`` and ``check``; stderr must name the file,
the column (where there is one) and the line (text) or row (Parquet), and never
show a traceback. The good rows are those of ``GOOD``; each case breaks one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli

HEADER = "timestamp,user_id,event,experiment_id,variant,value"
GOOD = [
    "2026-10-01T10:00:00Z,a,exposure,exp,control,",
    "2026-10-01T11:00:00Z,a,order,,,12.5",
    "2026-10-02T09:00:00Z,b,exposure,exp,treatment,",
    "2026-10-02T10:00:00Z,b,nps_response,,,9",
]
KEYS = ["timestamp", "user_id", "event", "experiment_id", "variant", "value"]


def csv_text(*bad: str, header: str = HEADER) -> bytes:
    """The good rows with ``bad`` lines after the second one (line 4 onwards)."""
    return "\n".join([header, *GOOD[:2], *bad, *GOOD[2:]]).encode() + b"\n"


def ndjson_line(row: dict) -> str:
    import json

    return json.dumps(row)


def ndjson_rows() -> list[str]:
    rows = []
    for line in GOOD:
        cells = dict(zip(KEYS, line.split(","), strict=True))
        rows.append(ndjson_line({k: v for k, v in cells.items() if v}))
    return rows


def ndjson_text(*bad: str) -> bytes:
    """The good rows with ``bad`` lines after the second one (line 3 onwards)."""
    good = ndjson_rows()
    return "\n".join([*good[:2], *bad, *good[2:]]).encode() + b"\n"


def bad_byte(data: bytes) -> bytes:
    """``@@`` replaced by a byte that is never UTF-8."""
    return data.replace(b"@@", b"\xff")


def parquet_bytes(bad_value: float, event: str = "order") -> Callable[[Path], None]:
    """A writer of a Parquet log whose third row has ``bad_value``."""

    def write(path: Path) -> None:
        pl.DataFrame(
            {
                "timestamp": ["2026-10-01T10:00:00Z"] * 3,
                "user_id": ["a", "a", "b"],
                "event": ["exposure", "order", event],
                "experiment_id": ["exp", None, None],
                "variant": ["control", None, None],
                "value": [None, 1.0, bad_value],
            }
        ).write_parquet(path)

    return write


@dataclass(frozen=True)
class Case:
    """One bad log: its files and what the error must name."""

    name: str
    files: dict[str, bytes | Callable[[Path], None]]
    events: str  # the --events argument, relative to the lab root
    file: str  # the file the error names
    column: str | None
    where: str | None  # "line N" or "row N"
    also: str = ""  # more text the message must hold


C = Case
CASES = [
    C(
        "csv duplicate column",
        {"e.csv": csv_text(header=HEADER + ",value")},
        "e.csv",
        "e.csv",
        "value",
        "line 1",
    ),
    C(
        "csv row with more fields",
        {"e.csv": csv_text(GOOD[1] + ",extra")},
        "e.csv",
        "e.csv",
        "value",
        "line 4",
        "7 field(s), the header has 6",
    ),
    C(
        "csv row with fewer fields",
        {"e.csv": csv_text("2026-10-01T12:00:00Z,a,order")},
        "e.csv",
        "e.csv",
        "experiment_id",
        "line 4",
        "3 field(s)",
    ),
    C(
        "csv blank line",
        {"e.csv": csv_text("")},
        "e.csv",
        "e.csv",
        "timestamp",
        "line 4",
        "0 field(s)",
    ),
    C(
        "csv not utf-8",
        {"e.csv": bad_byte(csv_text("2026-10-01T12:00:00Z,@@,order,,,1"))},
        "e.csv",
        "e.csv",
        None,
        None,
    ),
    C(
        "csv NaN value",
        {"e.csv": csv_text("2026-10-01T12:00:00Z,a,order,,,NaN")},
        "e.csv",
        "e.csv",
        "value",
        "line 4",
        "NaN or infinite",
    ),
    C(
        "csv infinite value",
        {"e.csv": csv_text("2026-10-01T12:00:00Z,a,order,,,-inf")},
        "e.csv",
        "e.csv",
        "value",
        "line 4",
        "NaN or infinite",
    ),
    C(
        "csv nps 11",
        {"e.csv": csv_text("2026-10-02T12:00:00Z,b,nps_response,,,11")},
        "e.csv",
        "e.csv",
        "value",
        "line 4",
        "from 0 to 10",
    ),
    C(
        "csv nps -1",
        {"e.csv": csv_text("2026-10-02T12:00:00Z,b,nps_response,,,-1")},
        "e.csv",
        "e.csv",
        "value",
        "line 4",
        "from 0 to 10",
    ),
    C(
        "csv nps 7.5",
        {"e.csv": csv_text("2026-10-02T12:00:00Z,b,nps_response,,,7.5")},
        "e.csv",
        "e.csv",
        "value",
        "line 4",
        "value='7.5'",
    ),
    C(
        "csv control characters in a value",
        {"e.csv": csv_text("2026-10-01\x1b[31m,a,order,,,1")},
        "e.csv",
        "e.csv",
        "timestamp",
        "line 4",
        "\\x1b[31m",
    ),
    C(
        "csv control characters in a column name",
        {"e.csv": csv_text(header=HEADER.replace("user_id", "user\x1b]0;id"))},
        "e.csv",
        "e.csv",
        "user_id",
        None,
        "user\\x1b]0;id",
    ),
    C(
        "csv non-numeric value",
        {"e.csv": csv_text("2026-10-01T12:00:00Z,a,order,,,12,50")},
        "e.csv",
        "e.csv",
        "value",
        "line 4",
        "7 field(s)",
    ),
    C(
        "ndjson syntax error",
        {"e.ndjson": ndjson_text('{"timestamp": "2026-10-01",')},
        "e.ndjson",
        "e.ndjson",
        None,
        "line 3",
        "not one JSON object",
    ),
    C(
        "ndjson array line",
        {"e.ndjson": ndjson_text("[1, 2]")},
        "e.ndjson",
        "e.ndjson",
        None,
        "line 3",
        "JSON list",
    ),
    C(
        "ndjson scalar line",
        {"e.ndjson": ndjson_text("42")},
        "e.ndjson",
        "e.ndjson",
        None,
        "line 3",
        "JSON int",
    ),
    C(
        "ndjson not utf-8",
        {"e.ndjson": bad_byte(ndjson_text('{"event": "caf@@"}'))},
        "e.ndjson",
        "e.ndjson",
        None,
        None,
    ),
    C(
        "ndjson NaN value",
        {
            "e.ndjson": ndjson_text(
                ndjson_line(
                    {
                        "timestamp": "2026-10-01T12:00:00Z",
                        "user_id": "a",
                        "event": "order",
                        "value": "NaN",
                    }
                )
            )
        },
        "e.ndjson",
        "e.ndjson",
        "value",
        "line 3",
        "NaN or infinite",
    ),
    C(
        "ndjson nps 11",
        {
            "e.ndjson": ndjson_text(
                ndjson_line(
                    {
                        "timestamp": "2026-10-02T12:00:00Z",
                        "user_id": "b",
                        "event": "nps_response",
                        "value": 11,
                    }
                )
            )
        },
        "e.ndjson",
        "e.ndjson",
        "value",
        "line 3",
        "from 0 to 10",
    ),
    C(
        "ndjson control characters in a value",
        {
            "e.ndjson": ndjson_text(
                ndjson_line({"timestamp": "soon\x07", "user_id": "a", "event": "order"})
            )
        },
        "e.ndjson",
        "e.ndjson",
        "timestamp",
        "line 3",
        "soon\\x07",
    ),
    C(
        "parquet NaN value",
        {"e.parquet": parquet_bytes(math.nan)},
        "e.parquet",
        "e.parquet",
        "value",
        "row 3",
        "NaN or infinite",
    ),
    C(
        "parquet infinite value",
        {"e.parquet": parquet_bytes(math.inf)},
        "e.parquet",
        "e.parquet",
        "value",
        "row 3",
        "NaN or infinite",
    ),
    C(
        "parquet nps 7.5",
        {"e.parquet": parquet_bytes(7.5, "nps_response")},
        "e.parquet",
        "e.parquet",
        "value",
        "row 3",
        "from 0 to 10",
    ),
    C(
        "parquet not parquet",
        {"e.parquet": b"PAR1 this is not a parquet file"},
        "e.parquet",
        "e.parquet",
        None,
        None,
        "not a readable Parquet file",
    ),
    C(
        "folder: the bad csv among good ones",
        {
            "log/a.csv": csv_text(),
            "log/b.csv": csv_text(GOOD[1] + ",x"),
            "log/c.csv": csv_text(),
        },
        "log",
        "b.csv",
        "value",
        "line 4",
    ),
    C(
        "folder: the bad parquet among good ones",
        {"log/a.parquet": parquet_bytes(1.0), "log/b.parquet": b"not parquet at all"},
        "log",
        "b.parquet",
        None,
        None,
        "not a readable Parquet file",
    ),
    C(
        "folder: nps out of range in the second csv",
        {
            "log/a.csv": csv_text(),
            "log/b.csv": csv_text("2026-10-02T12:00:00Z,b,nps_response,,,11"),
        },
        "log",
        "b.csv",
        "value",
        "line 4",
        "from 0 to 10",
    ),
    C(
        "glob: the ndjson that is not utf-8",
        {"log/a.ndjson": ndjson_text(), "log/b.ndjson": bad_byte(ndjson_text("@@"))},
        "log/*.ndjson",
        "b.ndjson",
        None,
        None,
    ),
    C(
        "glob: mixed formats, the ragged csv",
        {
            "log/a.ndjson": ndjson_text(),
            "log/b.csv": csv_text("2026-10-01T12:00:00Z,a"),
        },
        "log/*",
        "b.csv",
        "event",
        "line 4",
    ),
]


def write_case(root: Path, case: Case) -> None:
    for name, content in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)


def run(lab, command: str, events: str) -> tuple[int, str]:
    args = ["analyze", "exp"] if command == "analyze" else ["check"]
    experiments = str(lab.experiments_dir)
    code, _, err = run_cli(*args, "--events", events, "--experiments", experiments)
    return code, err


@pytest.mark.parametrize("command", ["analyze", "check"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_bad_log_exits_2_naming_file_column_and_line(
    lab, case: Case, command: str
) -> None:
    lab.experiment(secondary_metrics=["nps"])
    write_case(lab.root, case)
    code, err = run(lab, command, str(lab.root / case.events))

    assert code == 2, err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"error: {lab.root}/"), err
    assert case.file in first.split(": ")[1], err
    if case.column is not None:
        assert f"(column '{case.column}')" in err
    if case.where is not None:
        assert case.where in err
    assert case.also in err
    assert not any(ord(ch) < 32 and ch != "\n" for ch in err), repr(err)


@pytest.mark.parametrize("events", ["/", "empty-folder"])
def test_the_root_or_a_folder_without_logs_exits_2(lab, events: str) -> None:
    lab.experiment()
    (lab.root / "empty-folder").mkdir()
    target = events if events == "/" else str(lab.root / events)
    code, err = run(lab, "check", target)
    assert code == 2, err
    assert "Traceback" not in err
    assert target in err


def test_an_ndjson_column_first_seen_after_line_10000_is_kept(lab) -> None:
    from cxlab.events import resolve_source, scan_events

    rows = [
        ndjson_line(
            {
                "timestamp": "2026-10-01T10:00:00Z",
                "user_id": f"u{i}",
                "event": "page_view",
            }
        )
        for i in range(10_050)
    ]
    rows.append(
        ndjson_line(
            {
                "timestamp": "2026-10-01T10:00:00Z",
                "user_id": "z",
                "event": "page_view",
                "platform": "ios",
            }
        )
    )
    path = lab.root / "late.ndjson"
    path.write_text("\n".join(rows) + "\n")
    frame = scan_events(resolve_source(path)).collect()
    assert frame["platform"].drop_nulls().to_list() == ["ios"]


@pytest.mark.parametrize("name", ["events.csv", "events.ndjson"])
def test_a_utf8_byte_order_mark_is_fine(lab, name: str) -> None:
    lab.experiment()
    path = lab.root / name
    body = csv_text() if name.endswith(".csv") else ndjson_text()
    path.write_bytes(b"\xef\xbb\xbf" + body)
    code, err = run(lab, "analyze", str(path))
    assert code == 0, err
