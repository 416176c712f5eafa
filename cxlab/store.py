"""Summaries kept on disk, so a restarted server does not rescan an unchanged log.

A stored value is found by a key made of everything it depends on: what the caller
passes (the log's fingerprint of paths, sizes and modification times; the configs'
content hashes; for analysed results also :func:`statistics_version`) and the
engine's own code (its files' sizes and modification times). A change to any of
them misses, and the value is computed again.

Values are pickled, and unpickling runs code: the folder must be one only the server
writes (by default ``.cxlab-cache/`` in the workspace, outside the data roots and the
uploads). Files are written atomically; a file that does not load is removed and
counts as a miss; only the :data:`KEEP` most recently used files are kept.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import pickle
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

KEEP = 256  # summaries; by as-of day, each experiment's result and opened history
_ENGINE = Path(__file__).resolve().parent
_log = logging.getLogger(__name__)


def _source_stamp(folder: Path) -> str:
    """A digest of a folder's Python files: their names, sizes and mtimes."""
    stamp = [
        (str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns)
        for f in sorted(folder.rglob("*.py"))
    ]
    return hashlib.sha256(repr(stamp).encode()).hexdigest()[:16]


@functools.cache
def engine_version() -> str:
    """A digest of the engine's source files (``cxlab/``)."""
    return _source_stamp(_ENGINE)


@functools.cache
def statistics_version() -> str:
    """A digest of the statistics' source files (``cxlab.stats``: ``stats/``).

    Part of the key of analysed results: in a checkout the statistics live
    outside ``cxlab/``, so :func:`engine_version` alone would miss their edits.
    """
    from cxlab import stats

    return _source_stamp(Path(stats.__file__).resolve().parent)


def key(*parts: Hashable) -> str:
    """The file key of a value computed from ``parts`` by this engine."""
    return hashlib.sha256(repr((parts, engine_version())).encode()).hexdigest()[:32]


def load(folder: Path, name: str) -> Any | None:
    """The value stored under ``name``, or None when there is none that loads."""
    path = folder / f"{name}.pickle"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:  # unreadable: the value is computed again
        _log.warning("could not read %s", path, exc_info=True)
        return None
    try:
        value = pickle.loads(data)
    except Exception:  # a file of another version or a torn copy: recompute
        _log.warning("removing %s: it does not load", path.name, exc_info=True)
        path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):  # used now: the last to be removed
        os.utime(path)
    return value


def save(folder: Path, name: str, value: Any) -> None:
    """Store ``value`` under ``name`` atomically; keep the :data:`KEEP` latest used.

    A folder that cannot be written only costs the next start a rescan, so the
    failure is logged, not raised.
    """
    temporary: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            temporary = Path(f.name)
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, folder / f"{name}.pickle")
        stored = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns)
        for old in stored[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        _log.warning("could not store %s in %s", name, folder, exc_info=True)
