"""The Data page's safe sources in the app: data roots, session uploads, shown paths.

The data roots are ``CXLAB_DATA_ROOTS`` (folders separated by ``:``, relative to the
repository or absolute), else the repository's ``data/``. Uploads go to
``data/uploads/<session>/`` (``CXLAB_UPLOADS_DIR`` moves the uploads folder); session
folders older than ``CXLAB_UPLOAD_TTL_HOURS`` (default 24) are removed when the
server starts and on every upload.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import streamlit as st

from cxlab.events import EventSource
from cxlab.sources import (
    MAX_UPLOAD_MB,
    UPLOAD_TTL_HOURS,
    data_roots,
    resolve_inside,
    scrub_paths,
    session_folder,
    shown_path,
    sweep_uploads,
)
from cxlab.ui.cache import ROOT, experiments_folder

ROOTS_ENV = "CXLAB_DATA_ROOTS"
UPLOADS_ENV = "CXLAB_UPLOADS_DIR"
TTL_ENV = "CXLAB_UPLOAD_TTL_HOURS"
SESSION_KEY = "data_upload_session"


def roots() -> tuple[Path, ...]:
    """The data roots a server path must stay inside."""
    return data_roots(os.environ.get(ROOTS_ENV), ROOT)


def resolve(spec: str) -> EventSource:
    """A log typed on the Data page, checked against the data roots.

    Raises:
        InputError: outside the roots, unreadable, or not a log.
    """
    return resolve_inside(roots(), spec, base=ROOT)


def uploads_root() -> Path:
    """The folder holding every session's uploads."""
    return Path(os.environ.get(UPLOADS_ENV) or ROOT / "data" / "uploads")


def ttl_hours() -> float:
    """Hours after which a session's uploads are removed."""
    return float(os.environ.get(TTL_ENV) or UPLOAD_TTL_HOURS)


def session_uploads() -> Path:
    """This session's uploads folder (expired folders of others are swept)."""
    session = st.session_state.setdefault(SESSION_KEY, uuid.uuid4().hex)
    sweep_uploads(uploads_root(), max_age_hours=ttl_hours(), keep=session)
    return session_folder(uploads_root(), session)


@st.cache_resource(show_spinner=False)
def sweep_at_startup() -> None:
    """Remove expired upload folders, once per server process."""
    sweep_uploads(uploads_root(), max_age_hours=ttl_hours())


def upload_limit_mb() -> int:
    """The upload size limit: ours or ``server.maxUploadSize``, the smaller."""
    return min(MAX_UPLOAD_MB, st.get_option("server.maxUploadSize"))


def roots_text() -> str:
    """The data roots as users see them, e.g. ``data/``."""
    return ", ".join(shown(r) + "/" for r in roots())


def _bases() -> list[Path]:
    return [ROOT, *roots(), uploads_root(), experiments_folder()]


def shown(path: Path | str) -> str:
    """A path as users see it: relative to the repository."""
    return shown_path(path, _bases())


def scrub(text: str) -> str:
    """A message without the server's absolute folders."""
    return scrub_paths(text, _bases())
