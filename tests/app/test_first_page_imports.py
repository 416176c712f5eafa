"""The first page imports only what it draws: a restarted server answers sooner.

Importing SciPy's stats, integrate and optimize, statsmodels (and pandas with it),
SQLGlot and the charts cost the first page 1.5-2 s of server CPU before
they were imported where used (bench/RESULTS.md, page speed). Drawing the
portfolio does not import pandas either (Streamlit imports it for any table or
chart): a background thread does, for the next page.
"""

from __future__ import annotations

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


def test_the_portfolio_leaves_pandas_to_a_background_import(
    tmp_path: Path, sample_log: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WATCH_PANDAS],
        cwd=ROOT,
        env={**os.environ, "CXLAB_CACHE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    importer, imported = done.stdout.strip().splitlines()[-1].split("|")
    assert importer == "import pandas.io.formats.style"  # not the script's thread
    assert imported == "True"
