"""Safe data sources: server paths only inside the data roots, uploads that expire.

A log typed as a server path (a file, a folder or a glob) is accepted only when the
path and every file it names lie inside one of the data roots *after* ``..`` and
symbolic links are resolved (:func:`resolve_inside`). Anything else is refused with
a message that names the roots, never the resolved target.

Uploads go to one folder per session under the uploads folder; session folders
untouched for longer than the time limit are removed (:func:`sweep_uploads`).

Paths shown to users are relative to the repository (:func:`shown_path`,
:func:`scrub_paths`): the server's own folders stay private.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from cxlab.errors import EventLogError, InputError
from cxlab.events import FORMATS, EventSource, resolve_source

MAGIC = re.compile(r"[*?\[]")
UPLOAD_TTL_HOURS = 24.0
MAX_UPLOAD_MB = 200
UPLOAD_TYPES = ("csv", "parquet", "ndjson", "jsonl", "json")
SESSION_ID = re.compile(r"[0-9a-f]{32}")


class OutsideRootsError(InputError):
    """A server path that leaves the data roots, or one that cannot be read."""


def data_roots(spec: str | None, base: Path) -> tuple[Path, ...]:
    """The data roots: ``spec`` split on :data:`os.pathsep`, else ``base/data``.

    Args:
        spec: the configured roots (e.g. ``CXLAB_DATA_ROOTS``), relative to
            ``base`` or absolute; empty or None means the default.
        base: the repository root.

    Returns:
        The resolved roots.
    """
    parts = [p.strip() for p in (spec or "").split(os.pathsep) if p.strip()]
    return tuple((base / p).resolve() for p in parts or ["data"])


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _refuse(spec: str, roots: Sequence[Path], base: Path) -> OutsideRootsError:
    allowed = ", ".join(shown_path(r, [base, *roots]) + "/" for r in roots)
    return OutsideRootsError(
        f"{spec}: not inside the data folders ({allowed}); only files there can be "
        "read. An admin can add folders with CXLAB_DATA_ROOTS."
    )


def resolve_inside(roots: Sequence[Path], spec: str, *, base: Path) -> EventSource:
    """The files of a log typed as a server path, checked against the data roots.

    The path (for a glob, its part before the first wildcard) is resolved (``..``
    and symbolic links) and must lie inside a root; so must every file it names.

    Args:
        roots: resolved data roots.
        spec: a file, folder or glob; relative paths are relative to ``base``.
        base: the repository root.

    Returns:
        The log's files (all inside the roots).

    Raises:
        OutsideRootsError: the path or one of its files leaves the roots, or the
            path cannot be read.
        EventLogError: nothing found, or a file of an unsupported type.
    """
    text = spec.strip()
    if not text:
        raise OutsideRootsError("type a file, folder or glob inside the data folders")
    path = base / text  # an absolute path replaces base
    magic = MAGIC.search(str(path))
    anchor = Path(str(path)[: magic.start()]) if magic else path
    try:
        if not _inside(anchor.resolve(), roots):
            raise _refuse(text, roots, base)
        source = resolve_source(path)
        files = tuple(f.resolve() for f in source.files)
    except OSError:
        raise OutsideRootsError(f"{text}: cannot be read") from None
    if not all(_inside(f, roots) for f in files):
        raise _refuse(text, roots, base)
    return EventSource(str(path.resolve()) if not magic else str(path), files)


def check_upload(path: Path) -> Path:
    """Keep an uploaded log only if its columns can be read; else delete it at once.

    A log whose columns have other names is kept: the Data page's column mapping
    is how such a log is used.

    Raises:
        EventLogError: the file is not a readable CSV, Parquet or NDJSON log.
    """
    try:
        log_columns(resolve_source(path))
    except InputError:
        path.unlink(missing_ok=True)
        raise
    return path


def session_folder(uploads: Path, session_id: str) -> Path:
    """The uploads folder of one session (created if needed).

    Raises:
        ValueError: a session id that is not 32 hex digits.
    """
    if not SESSION_ID.fullmatch(session_id):
        raise ValueError(f"bad session id {session_id!r}")
    folder = uploads / session_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sweep_uploads(
    uploads: Path,
    *,
    max_age_hours: float = UPLOAD_TTL_HOURS,
    now: float | None = None,
    keep: str | None = None,
) -> list[Path]:
    """Remove the session folders (and stray files) of uploads older than a limit.

    Args:
        uploads: the uploads folder.
        max_age_hours: the age, by last modification, after which an entry goes.
        now: the current time (seconds since the epoch); default now.
        keep: a session id whose folder is kept whatever its age.

    Returns:
        The removed entries.
    """
    if not uploads.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - max_age_hours * 3600
    removed = []
    for entry in uploads.iterdir():
        if entry.name == keep or entry.lstat().st_mtime >= cutoff:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def shown_path(path: Path | str, bases: Sequence[Path]) -> str:
    """A path as users see it: scrubbed like :func:`scrub_paths`, else its name."""
    resolved = Path(path).resolve()
    text = scrub_paths(str(resolved), bases)
    return resolved.name if Path(text).is_absolute() else text


def scrub_paths(text: str, bases: Sequence[Path]) -> str:
    """A message with the server's absolute folders cut down to relative paths.

    Each base (the repository, data roots outside it) is replaced by nothing
    (inside the repository) or by its own name.

    Args:
        text: the message.
        bases: the repository root first, then other folders to hide.

    Returns:
        The message with ``bases`` replaced.
    """
    repo, *others = bases
    for folder in sorted(others, key=lambda p: len(str(p)), reverse=True):
        if not folder.is_relative_to(repo):
            text = text.replace(str(folder), folder.name)
    return text.replace(str(repo) + os.sep, "").replace(str(repo), ".")


def safe_upload_name(name: str, data: bytes) -> str:
    """A safe file name for an uploaded log: cleaned stem, content hash, extension.

    Raises:
        InputError: an extension other than CSV, Parquet or NDJSON.
    """
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix not in UPLOAD_TYPES:
        raise InputError(
            f"{name}: unsupported file type '.{suffix}' (use .csv, .parquet or .ndjson)"
        )
    stem = re.sub(r"[^a-z0-9_-]+", "-", Path(name).stem.lower()).strip("-_")[:60]
    digest = hashlib.sha256(data).hexdigest()[:10]
    return f"{stem or 'upload'}-{digest}.{suffix}"


def save_upload(
    folder: Path | str, name: str, data: bytes, *, max_mb: int = MAX_UPLOAD_MB
) -> Path:
    """Save an uploaded log under ``folder`` with a safe name, atomically.

    Args:
        folder: the uploads folder (created if needed).
        name: the file name the browser sent.
        data: the file's bytes.
        max_mb: the size limit in megabytes.

    Returns:
        The saved file (the same content is saved once).

    Raises:
        InputError: an unsupported type, an empty file or one over the limit.
    """
    if not data:
        raise InputError(f"{name}: the uploaded file is empty")
    if len(data) > max_mb * 1024 * 1024:
        raise InputError(f"{name}: larger than the {max_mb} MB upload limit")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    path = root / safe_upload_name(name, data)
    if path.is_file() and path.stat().st_size == len(data):
        return path
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def log_columns(source: EventSource) -> list[tuple[str, str]]:
    """The columns of a log's first file and their types (nothing else is read).

    Raises:
        EventLogError: the file cannot be read.
    """
    first = source.files[0]
    fmt = FORMATS[first.suffix.lower()]
    try:
        if fmt == "parquet":
            schema = pl.read_parquet_schema(first)
        elif fmt == "csv":
            schema = dict(pl.scan_csv(first, infer_schema=False).collect_schema())
        else:
            schema = dict(pl.scan_ndjson(first).collect_schema())
    except pl.exceptions.PolarsError as exc:
        raise EventLogError(first, f"cannot read the log: {exc}") from exc
    return [(name, str(dtype)) for name, dtype in schema.items()]
