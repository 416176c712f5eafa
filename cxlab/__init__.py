"""CX Lab: the experimentation engine behind the dashboard.

The analysis entry points load scipy and statsmodels, so they are imported on
first use: ``import cxlab.summaries`` (the data step alone) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cxlab.errors import ConfigError, EventLogError, InputError

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
