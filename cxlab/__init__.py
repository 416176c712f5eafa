"""CX Lab: the experimentation engine behind the dashboard."""

from __future__ import annotations

from cxlab.api import analyze_experiment, analyze_folder
from cxlab.errors import ConfigError, EventLogError, InputError

__all__ = [
    "ConfigError",
    "EventLogError",
    "InputError",
    "analyze_experiment",
    "analyze_folder",
]
