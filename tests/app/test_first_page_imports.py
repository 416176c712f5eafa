"""The first page imports only what it draws: a restarted server answers sooner.

Importing SciPy's stats, integrate and optimize, statsmodels (and pandas with it),
SQLGlot and the charts cost the first page 1.5-2 s of server CPU before
they were imported where used (bench/RESULTS.md, page speed). Drawing the
portfolio does not import pandas either (Streamlit imports it for any table or
chart): a background thread does, for the next page.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What app.py and pages/portfolio.py import, and what a stored portfolio unpickles.
FIRST_PAGE = [
    "cxlab.errors",
    "cxlab.ui.auth",
    "cxlab.ui.cache",
    "cxlab.ui.drawing",
    "cxlab.ui.notices",
    "cxlab.ui.sources",
    "cxlab.ui.url_state",
    "cxlab.ui.navigation",
    "cxlab.portfolio",
    "cxlab.states",
    "cxlab.analysis",
]
LATER = [
    "cxlab.charts",
    "cxlab.planning",
    "pandas",
    "scipy.integrate",
    "scipy.optimize",
    "scipy.stats",
    "sqlglot",
    "statsmodels",
]


def test_the_portfolio_imports_none_of_the_heavy_modules() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in FIRST_PAGE)
        + f"print(' '.join(m for m in {LATER!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == []


# Which thread first looks for pandas while the portfolio is drawn, then the
# background import (cxlab.ui.cache.warm_import) is waited for.
WATCH_PANDAS = """
import sys, threading
from streamlit.testing.v1 import AppTest

importers = []

class Watch:  # asked by the import system; Polars also asks (find_spec) for a probe
    def find_spec(self, name, path=None, target=None):
        importing = sys._getframe(2).f_code.co_name == "_find_and_load_unlocked"
        if name == "pandas" and importing and "pandas" not in sys.modules:
            importers.append(threading.current_thread().name)
        return None

sys.meta_path.insert(0, Watch())
at = AppTest.from_file("app.py", default_timeout=300).run()
assert not at.exception and at.title[0].value == "Experiment portfolio"
for thread in threading.enumerate():
    if thread.name.startswith("import "):
        thread.join()
print(importers[0], "pandas" in sys.modules, sep="|")
"""


def printed(script: str, store: Path) -> list[str]:
    """The last line ``script`` prints in a fresh process, split at "|"."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "CXLAB_CACHE_DIR": str(store)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1].split("|")


def test_the_portfolio_leaves_pandas_to_a_background_import(
    tmp_path: Path, sample_log: Path
) -> None:
    importer, imported = printed(WATCH_PANDAS, tmp_path)
    assert importer == "import pandas"  # not the script's thread
    assert imported == "True"


# Every page in one session; which alerts were drawn, and was the catalog loaded.
VISIT_PAGES = """
import sys
from streamlit.testing.v1 import AppTest

at = AppTest.from_file("app.py", default_timeout=300).run()
alerts = 0
for page in ("results", "configs", "data", "planner", "portfolio"):
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, (page, at.exception)
    alerts += len([*at.success, *at.info, *at.warning, *at.error])
print(alerts, "streamlit.emojis" in sys.modules, sep="|")
"""
ALERTS = ("success", "info", "warning", "error")


def test_no_page_loads_streamlits_emoji_catalog(
    tmp_path: Path, sample_log: Path
) -> None:
    """No alert makes Streamlit search its text for a leading emoji.

    Streamlit does that for an alert without an icon whose text is not ASCII
    ("Valid — would be saved…"); the first search in a process loads and compiles
    its emoji catalog: 120 ms of the Configs page's first visit.
    """
    alerts, loaded = printed(VISIT_PAGES, tmp_path)
    assert int(alerts) >= 4  # the results, Configs (3) and planner pages show some
    assert loaded == "False"


def test_every_alert_names_its_icon() -> None:
    """The alerts the visit above does not reach (errors, refusals) too."""
    files = [
        ROOT / "app.py",
        *(ROOT / "ui").glob("*.py"),
        *(ROOT / "pages").glob("*.py"),
    ]
    bare = [
        f"{path.name}:{node.lineno}"
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ALERTS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "st"
        and not any(k.arg == "icon" for k in node.keywords)
    ]
    assert len(files) > 10
    assert bare == []
