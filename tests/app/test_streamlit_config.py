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


def test_the_server_does_not_watch_its_own_code() -> None:
    # Watching every imported module's file cost 0.3-0.5 s of server CPU per
    # page drawn (bench/RESULTS.md); a deployed server never reloads its code.
    server = tomllib.loads(CONFIG.read_text())["server"]
    assert server["fileWatcherType"] == "none"
    assert server["runOnSave"] is False
