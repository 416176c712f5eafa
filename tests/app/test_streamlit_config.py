"""The app's Streamlit settings: users never see a traceback."""

from __future__ import annotations

import tomllib
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def test_uncaught_exceptions_show_no_details_in_the_browser() -> None:
    # Streamlit 1.67 `client.showErrorDetails`: full | stacktrace | type | none;
    # "none" shows a generic message, the details go to the console only.
    client = tomllib.loads(CONFIG.read_text())["client"]
    assert client["showErrorDetails"] == "none"
