"""The first page imports only what it draws: a restarted server answers sooner.

Importing SciPy's stats, integrate and optimize, statsmodels (and pandas with it),
SQLGlot and the charts cost the first page 1.5-2 s of server CPU before
they were imported where used (bench/RESULTS.md, page speed).
"""

from __future__ import annotations

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
