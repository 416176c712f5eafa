"""Every page renders on its own with the sample log, without an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


@pytest.mark.usefixtures("sample_log")
@pytest.mark.parametrize(
    "script", SCRIPTS, ids=[str(p.relative_to(ROOT)) for p in SCRIPTS]
)
def test_page_renders_without_exception(script: Path, timeout: int) -> None:
    at = AppTest.from_file(str(script), default_timeout=timeout).run()
    assert not at.exception
    assert not [e.value for e in at.error if "Something went wrong" in e.value]
