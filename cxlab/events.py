"""Scan an event log (CONTRACT §1) lazily and check it against named rules.

``scan_events`` resolves a file, folder or glob, scans it with Polars without reading
it, maps configured column names onto the contract's, and normalises types:
``timestamp`` to UTC datetimes, ``user_id`` to text, ``value`` to Float64. Rows whose
raw text cannot be converted are not dropped: the rules in :data:`RULES` count them
and :func:`raise_for_violations` names the file, the column and the first rows.
"""

from __future__ import annotations

import glob as globlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cxlab.errors import EventLogError

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
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
        )
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
        # Every column as text: conversion is ours, so bad cells become named errors.
        return pl.scan_csv(sources, infer_schema=False, include_file_paths=FILE_COL)
    return pl.scan_ndjson(
        sources, infer_schema_length=10_000, include_file_paths=FILE_COL
    )


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
            raise EventLogError(label, f"cannot read the log: {exc}") from exc
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
        (pl.col("value").is_null() & pl.col(RAW_VALUE).is_not_null())
        | pl.col("value").is_nan()
        | pl.col("value").is_infinite(),
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


def rule_counts_exprs() -> list[pl.Expr]:
    """One aggregate per rule: how many rows break it."""
    return [expr.sum().alias(name) for name, (_, _, expr) in RULES.items()]


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
    """Render example rows as 'file row N: col=value, …' lines."""
    lines = []
    for record in rows.to_dicts():
        file = record.pop(FILE_COL)
        row = record.pop("row")
        cells = ", ".join(f"{k}={v!r}" for k, v in record.items())
        lines.append(f"  {Path(file).name} row {row}: {cells}")
    return "\n".join(lines)


def raise_for_violations(
    lf: pl.LazyFrame, counts: Mapping[str, int], label: str
) -> None:
    """Raise EventLogError for the first broken rule, naming file, column and rows."""
    for name, (column, message, condition) in RULES.items():
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
