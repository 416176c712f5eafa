"""Scan an event log (CONTRACT §1) lazily and check it against named rules.

``scan_events`` resolves a file, folder or glob, scans it with Polars without reading
it, maps configured column names onto the contract's, and normalises types:
``timestamp`` to UTC datetimes, ``user_id`` to text, ``value`` to Float64. Rows whose
raw text cannot be converted are not dropped: the rules in :data:`RULES` count them
and :func:`raise_for_violations` names the file, the column and the first rows.
"""

from __future__ import annotations

import csv
import glob as globlib
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cxlab.errors import EventLogError, printable

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}
REQUIRED = ("timestamp", "user_id", "event")
EXPOSURE = "exposure"
FILE_COL = "_file"
RAW_TS = "_raw_timestamp"
RAW_VALUE = "_raw_value"
UTC = pl.Datetime("us", "UTC")
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
EXAMPLE_ROWS = 5
BOM = b"\xef\xbb\xbf"
HEADER_BYTES = 1 << 20  # a CSV header longer than this is not a log's header


@dataclass(frozen=True, slots=True)
class EventSource:
    """A resolved event log: its files and their fingerprint for caching."""

    spec: str
    files: tuple[Path, ...]

    @property
    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """(path, size, mtime_ns) of every file: changes when any file changes."""
        return tuple(
            (str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in self.files
        )

    @property
    def label(self) -> str:
        """The file's name, or the spec for a folder or glob."""
        return str(self.files[0]) if len(self.files) == 1 else self.spec


def resolve_source(spec: str | Path) -> EventSource:
    """Find the files of a log given as a file, a folder or a glob.

    Raises:
        EventLogError: nothing found, or a file of an unsupported type.
    """
    spec_text = str(spec)
    path = Path(spec_text)
    if path.is_dir():
        if path.resolve() == Path(path.resolve().anchor):
            raise EventLogError(spec_text, "the filesystem root is not a log folder")
        files = _log_files(path)
    elif path.is_file():
        files = [path]
    elif any(ch in spec_text for ch in "*?["):
        files = sorted(
            Path(p)
            for p in globlib.glob(spec_text, recursive=True)
            if Path(p).is_file()
        )
    else:
        raise EventLogError(spec_text, "event log not found")
    if not files:
        raise EventLogError(spec_text, "no Parquet, CSV or NDJSON files found")
    for f in files:
        if f.suffix.lower() not in FORMATS:
            raise EventLogError(
                f, f"unsupported file type '{f.suffix}' (use .parquet, .csv or .ndjson)"
            )
    return EventSource(spec_text, tuple(files))


def _log_files(folder: Path) -> list[Path]:
    """The log files under a folder, sorted; unreadable sub-folders are skipped."""
    found = (
        Path(top) / name
        for top, _, names in os.walk(folder)
        for name in names
        if Path(name).suffix.lower() in FORMATS
    )
    return sorted(f for f in found if f.is_file())


def _scan_files(files: Sequence[Path], fmt: str) -> pl.LazyFrame:
    sources = [str(f) for f in files]
    if fmt == "parquet":
        return pl.scan_parquet(
            sources,
            include_file_paths=FILE_COL,
            missing_columns="insert",
            extra_columns="ignore",
        )
    if fmt == "csv":
        for f in files:
            _check_csv_header(f)
        # Every column as text: conversion is ours, so bad cells become named errors.
        return pl.scan_csv(sources, infer_schema=False, include_file_paths=FILE_COL)
    # The schema from every line: a column first seen late must not vanish.
    plain = [str(f) for f in files if not _starts_with_bom(f)]
    frames = [
        pl.scan_ndjson(plain, infer_schema_length=None, include_file_paths=FILE_COL)
    ][: bool(plain)]
    frames += [  # Polars reads no byte-order mark: these few are read without it
        pl.scan_ndjson(
            io.BytesIO(f.read_bytes()[len(BOM) :]), infer_schema_length=None
        ).with_columns(pl.lit(str(f)).alias(FILE_COL))
        for f in files
        if str(f) not in plain
    ]
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _starts_with_bom(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(BOM)) == BOM


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as f:
        first = f.readline(HEADER_BYTES)
    return next(csv.reader(_decoded_lines(path, [first])), [])


def _check_csv_header(path: Path) -> None:
    """Refuse a CSV file whose header names a column twice."""
    header = _csv_header(path)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise EventLogError(
                path, "line 1: the header names this column twice", column=name
            )
        seen.add(name)


# --- text files, read line by line only to explain what Polars refused -------------


def _decoded_lines(path: Path, raw: Iterator[bytes] | Sequence[bytes]) -> Iterator[str]:
    """Lines as text; a line that is not UTF-8 raises EventLogError with its number."""
    for number, line in enumerate(raw, 1):
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventLogError(
                path,
                f"line {number}: not UTF-8 text (byte {line[exc.start]:#04x} "
                f"at character {exc.start + 1})",
            ) from None


def _csv_problem(path: Path) -> None:
    """Raise EventLogError for the first malformed line of a CSV file."""
    _check_csv_header(path)
    with path.open("rb") as f:
        reader = csv.reader(_decoded_lines(path, f))
        header = next(reader, [])
        start = reader.line_num + 1
        for fields in reader:
            if len(fields) != len(header):
                raise _ragged_error(path, start, len(fields), header)
            start = reader.line_num + 1


def _ragged_error(
    path: Path, line: int, fields: int, header: Sequence[str]
) -> EventLogError:
    """A CSV line with too few or too many fields; the column is the first missing."""
    return EventLogError(
        path,
        f"line {line}: {fields} field(s), the header has {len(header)}",
        column=header[min(fields, len(header) - 1)],
    )


def _ndjson_problem(path: Path) -> None:
    """Raise EventLogError for the first NDJSON line that is not one JSON object."""
    with path.open("rb") as f:
        for number, line in enumerate(_decoded_lines(path, f), 1):
            if not line.strip():
                continue
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EventLogError(
                    path,
                    f"line {number}: not one JSON object ({exc.msg} at character "
                    f"{exc.colno})",
                ) from None
            if not isinstance(parsed, dict):
                raise EventLogError(
                    path,
                    f"line {number}: a JSON {type(parsed).__name__}, not one JSON "
                    "object",
                )


def _parquet_problem(path: Path) -> None:
    try:
        pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise EventLogError(path, f"not a readable Parquet file: {exc}") from None


PROBLEMS = {"csv": _csv_problem, "ndjson": _ndjson_problem, "parquet": _parquet_problem}


def read_error(files: Sequence[Path], label: str, exc: Exception) -> EventLogError:
    """The error to show when Polars cannot read a log: the file and line at fault.

    Each file is checked line by line (only now, on the error path); when none
    shows a fault, Polars' own message is shown with the log's name.
    """
    for f in files:
        try:
            PROBLEMS[FORMATS[f.suffix.lower()]](f)
        except EventLogError as error:
            return error
    return EventLogError(label, f"cannot read the log: {exc}")


def line_numbers(path: Path, rows: Sequence[int]) -> dict[int, int]:
    """The 1-based line in a text file where each 1-based data row starts."""
    wanted, found = set(rows), {}
    with path.open("rb") as f:
        lines = _decoded_lines(path, f)
        if FORMATS[path.suffix.lower()] == "csv":
            reader = csv.reader(lines)
            next(reader, None)
            starts = []
            start = reader.line_num + 1
            for _ in reader:
                starts.append(start)
                start = reader.line_num + 1
                if len(starts) >= max(wanted):
                    break
        else:
            starts = []
            for number, line in enumerate(lines, 1):
                starts += [number] if line.strip() else []
                if len(starts) >= max(wanted):
                    break
    for row in wanted:
        if row <= len(starts):
            found[row] = starts[row - 1]
    return found


def _parse_timestamp(dtype: pl.DataType, *, thorough: bool = False) -> pl.Expr:
    """Timestamps to UTC datetimes.

    Text is parsed fast with the one ISO-8601 format Polars infers from the first
    value; ``thorough`` also tries every other ISO-8601 spelling row by row (for a
    log that mixes formats: several times slower, so only used when needed).
    """
    col = pl.col("timestamp")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return col.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if isinstance(dtype, pl.Date):
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if not thorough:
        return col.cast(pl.String).str.to_datetime(
            time_zone="UTC", time_unit="us", strict=False
        )
    # A trailing "Z" means UTC; spelled as an offset it parses with every format.
    text = col.cast(pl.String).str.strip_chars().str.replace(r"[Zz]$", "+00:00")
    candidates = [text.str.to_datetime(time_zone="UTC", time_unit="us", strict=False)]
    candidates += [text.str.strptime(UTC, fmt, strict=False) for fmt in ISO_FORMATS]
    return pl.coalesce(candidates)


def _normalise(lf: pl.LazyFrame, label: str, *, thorough: bool) -> pl.LazyFrame:
    schema = lf.collect_schema()
    missing = [c for c in REQUIRED if c not in schema]
    if missing:
        raise EventLogError(
            label,
            f"missing required column(s): {', '.join(missing)}; "
            f"found: {', '.join(c for c in schema if c != FILE_COL)}",
            column=missing[0],
        )
    # The raw columns keep the file's own values (no per-row formatting): the rules
    # compare them with the parsed ones, and error messages show them.
    exprs: list[pl.Expr] = [
        pl.col("timestamp").alias(RAW_TS),
        _parse_timestamp(schema["timestamp"], thorough=thorough).alias("timestamp"),
        pl.col("user_id").cast(pl.String).alias("user_id"),
        pl.col("event").cast(pl.String).alias("event"),
    ]
    exprs += [
        pl.col(name).cast(pl.String).alias(name)
        if name in schema
        else pl.lit(None, pl.String).alias(name)
        for name in ("experiment_id", "variant")
    ]
    if "value" in schema:
        raw = pl.col("value")
        if schema["value"] == pl.String:
            raw = raw.str.strip_chars()
            raw = pl.when(raw == "").then(None).otherwise(raw)
        exprs += [
            raw.alias(RAW_VALUE),
            raw.cast(pl.Float64, strict=False).alias("value"),
        ]
    else:
        exprs += [
            pl.lit(None, pl.String).alias(RAW_VALUE),
            pl.lit(None, pl.Float64).alias("value"),
        ]
    return lf.with_columns(exprs)


def scan_events(
    source: EventSource,
    columns: Mapping[str, str] | None = None,
    *,
    thorough_timestamps: bool = False,
) -> pl.LazyFrame:
    """Scan a log lazily with contract column names and types (nothing is read yet).

    Args:
        source: the resolved files.
        columns: contract name → column name in the log (a config's ``columns:``).
        thorough_timestamps: try every ISO-8601 spelling on each text timestamp
            (for logs that mix formats), not just the one inferred.

    Returns:
        A LazyFrame with ``timestamp`` (UTC), ``user_id`` (text), ``event``,
        ``experiment_id``, ``variant``, ``value`` (Float64), every other column as a
        dimension, and bookkeeping columns ``_file``, ``_raw_timestamp`` and
        ``_raw_value``.

    Raises:
        EventLogError: a required column is missing or a file cannot be scanned.
    """
    by_format: dict[str, list[Path]] = {}
    for f in source.files:
        by_format.setdefault(FORMATS[f.suffix.lower()], []).append(f)
    frames = []
    for fmt, files in by_format.items():
        label = str(files[0]) if len(files) == 1 else f"{source.spec} ({fmt} files)"
        try:
            lf = _scan_files(files, fmt)
            if columns:
                present = lf.collect_schema()
                renames = {}
                for canonical, actual in columns.items():
                    if actual not in present:
                        raise EventLogError(
                            label,
                            f"mapped column '{actual}' (for '{canonical}') not found",
                            column=actual,
                        )
                    renames[actual] = canonical
                lf = lf.drop(
                    [c for c in renames.values() if c in present and c not in renames]
                ).rename(renames)
            frames.append(_normalise(lf, label, thorough=thorough_timestamps))
        except pl.exceptions.PolarsError as exc:
            raise read_error(files, label, exc) from exc
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="diagonal_relaxed")


# --- named validation rules ---------------------------------------------------------

IS_EXPOSURE = pl.col("event") == EXPOSURE

RULES: dict[str, tuple[str, str, pl.Expr]] = {
    # name: (column, what is wrong, offending-row expression)
    "timestamp_missing": ("timestamp", "missing timestamp", pl.col(RAW_TS).is_null()),
    "timestamp_unparseable": (
        "timestamp",
        "timestamp is not a date-time (ISO-8601 expected)",
        pl.col("timestamp").is_null() & pl.col(RAW_TS).is_not_null(),
    ),
    "user_id_missing": (
        "user_id",
        "missing user_id",
        pl.col("user_id").is_null() | (pl.col("user_id") == ""),
    ),
    "event_missing": (
        "event",
        "missing event name",
        pl.col("event").is_null() | (pl.col("event") == ""),
    ),
    "value_not_numeric": (
        "value",
        "value is not a number",
        pl.col("value").is_null() & pl.col(RAW_VALUE).is_not_null(),
    ),
    "value_not_finite": (
        "value",
        "value is NaN or infinite",
        pl.col("value").is_nan() | pl.col("value").is_infinite(),
    ),
    "exposure_missing_experiment": (
        "experiment_id",
        "exposure row without experiment_id",
        IS_EXPOSURE
        & (pl.col("experiment_id").is_null() | (pl.col("experiment_id") == "")),
    ),
    "exposure_missing_variant": (
        "variant",
        "exposure row without variant",
        IS_EXPOSURE & (pl.col("variant").is_null() | (pl.col("variant") == "")),
    ),
}


NPS_RULE = "nps_value_not_a_score"


def log_rules(nps_rows: pl.Expr | None = None) -> dict[str, tuple[str, str, pl.Expr]]:
    """The rules, with the NPS one when some rows are answers of an ``nps`` metric.

    Args:
        nps_rows: which rows are answers of a metric of type ``nps`` (its event
            and filter), whose value must be a whole number from 0 to 10.
    """
    if nps_rows is None:
        return dict(RULES)
    value = pl.col("value")
    not_a_score = (value < 0) | (value > 10) | (value != value.floor())
    return RULES | {
        NPS_RULE: (
            "value",
            "value of an NPS answer is not a whole number from 0 to 10",
            nps_rows & value.is_not_null() & not_a_score,
        )
    }


def rule_counts_exprs(rules: Mapping[str, tuple[str, str, pl.Expr]]) -> list[pl.Expr]:
    """One aggregate per rule: how many rows break it."""
    return [expr.sum().alias(name) for name, (_, _, expr) in rules.items()]


def offending_rows(
    lf: pl.LazyFrame, condition: pl.Expr, columns: Sequence[str]
) -> pl.DataFrame:
    """The first rows matching ``condition``, with their file and 1-based row number."""
    numbered = lf.with_columns(
        pl.int_range(1, pl.len() + 1).over(FILE_COL).alias("row")
    )
    keep = [FILE_COL, "row", *dict.fromkeys(columns)]
    return numbered.filter(condition).select(keep).head(EXAMPLE_ROWS).collect()


def format_rows(rows: pl.DataFrame) -> str:
    """Render example rows as 'file line N: col=value, …' (Parquet: 'row N')."""
    lines = []
    text_lines = {
        file: line_numbers(Path(file), group["row"].to_list())
        for (file,), group in rows.group_by(FILE_COL)
        if FORMATS.get(Path(file).suffix.lower(), "parquet") != "parquet"
    }
    for record in rows.to_dicts():
        file = record.pop(FILE_COL)
        row = record.pop("row")
        cells = ", ".join(f"{printable(k)}={v!r}" for k, v in record.items())
        where = f"row {row}"
        if file in text_lines:
            where = f"line {text_lines[file].get(row, '?')}"
        lines.append(f"  {Path(file).name} {where}: {cells}")
    return "\n".join(lines)


def raise_for_violations(
    lf: pl.LazyFrame,
    counts: Mapping[str, int],
    label: str,
    rules: Mapping[str, tuple[str, str, pl.Expr]] = RULES,
) -> None:
    """Raise EventLogError for the first broken rule, naming file, column and rows."""
    for name, (column, message, condition) in rules.items():
        count = int(counts.get(name, 0) or 0)
        if count:
            shown = [
                c
                if c not in ("timestamp", "value")
                else {"timestamp": RAW_TS, "value": RAW_VALUE}[c]
                for c in (column, "event", "user_id")
            ]
            rows = offending_rows(lf, condition, shown)
            rows = rows.rename({RAW_TS: "timestamp", RAW_VALUE: "value"}, strict=False)
            files = sorted(set(rows[FILE_COL].to_list()))
            raise EventLogError(
                ", ".join(files) if files else label,
                f"{message}: {count:,} row(s) [{name}]",
                column=column,
                rows=format_rows(rows),
            )


def ragged_lines(files: Sequence[Path]) -> pl.LazyFrame:
    """The lines of CSV files with fewer or more fields than their header.

    Polars fills a short row with nulls, so the fields are counted here: each line
    read whole (no separator, no quoting), its separators counted outside quoted
    text. Lines of a record spanning lines (a quoted line break) are not judged.
    """
    frames = []
    for f in files:
        header = _csv_header(f)
        line = pl.col("line").fill_null("")
        quotes = line.str.count_matches('"', literal=True)
        unquoted = pl.when(quotes == 0).then(line)
        unquoted = unquoted.otherwise(line.str.replace_all(r'"[^"]*"', ""))
        fields = pl.when(line == "").then(0)
        fields = fields.otherwise(unquoted.str.count_matches(",", literal=True) + 1)
        whole_record = ((quotes.cum_sum() - quotes) % 2 == 0) & (quotes % 2 == 0)
        frames.append(
            pl.scan_csv(
                str(f),
                has_header=False,
                separator="\x00",
                quote_char=None,
                new_columns=["line"],
                infer_schema=False,
            )
            .with_row_index("number", offset=1)
            .filter(whole_record & (fields != len(header)))
            .select(
                pl.lit(str(f)).alias(FILE_COL),
                "number",
                fields.alias("fields"),
                pl.lit(header).alias("header"),
            )
        )
    return pl.concat(frames).head(EXAMPLE_ROWS)


def raise_for_ragged(lines: pl.DataFrame) -> None:
    """Raise EventLogError for the first CSV line with a wrong number of fields."""
    if lines.height:
        file, number, fields, header = lines.row(0)
        error = _ragged_error(Path(file), number, fields, header)
        raise EventLogError(
            file,
            error.detail,
            column=error.column,
            rows="\n".join(
                f"  {Path(f).name} line {n}: {k} field(s)"
                for f, n, k, _ in lines.iter_rows()
            ),
        )
