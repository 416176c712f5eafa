"""CX Lab: the experimentation engine behind the dashboard.

The statistics and the app's Streamlit layer are ``cxlab.stats`` and ``cxlab.ui``.
In a checkout they are the folders ``stats/`` and ``ui/`` beside this one (DESIGN.md's
rooms), found through this package's path; an installed wheel holds them inside
the package (``package-dir`` in pyproject.toml), so no top-level ``stats`` or ``ui``
lands in site-packages.

The analysis entry points load scipy and statsmodels, so they are imported on
first use: ``import cxlab.summaries`` (the data step alone) stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxlab.errors import ConfigError, EventLogError, InputError

_PACKAGE = Path(__file__).resolve().parent
if not (_PACKAGE / "stats").is_dir():  # a checkout: stats/ and ui/ sit beside cxlab/
    __path__.append(str(_PACKAGE.parent))

if TYPE_CHECKING:
    from cxlab.api import analyze_experiment, analyze_folder

__all__ = [
    "ConfigError",
    "EventLogError",
    "InputError",
    "analyze_experiment",
    "analyze_folder",
]


def __getattr__(name: str) -> Any:
    """Import ``analyze_experiment`` / ``analyze_folder`` when first asked for."""
    if name in ("analyze_experiment", "analyze_folder"):
        from cxlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'cxlab' has no attribute {name!r}")
