"""STYLE habit 1: stats/ imports no I/O, UI or engine library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STATS_DIR = Path(__file__).resolve().parents[2] / "stats"
BANNED = {"polars", "streamlit", "yaml", "vl_convert", "cxlab", "pandas", "pyarrow"}
ALLOWED = {"__future__", "math", "numpy", "scipy", "statsmodels", "cxlab.stats"}
# Standard-library modules used for types and helpers only (no I/O).
ALLOWED_STDLIB = {"collections", "dataclasses", "functools", "typing"}


def imported_roots(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import in {path}"
            if node.module:
                names.add(node.module)
    # cxlab.stats.* is this room (cxlab/__init__.py maps the folder there).
    return {
        "cxlab.stats" if name.startswith("cxlab.stats") else name.split(".")[0]
        for name in names
    }


STATS_MODULES = sorted(STATS_DIR.rglob("*.py"))


def test_stats_package_has_modules() -> None:
    assert len(STATS_MODULES) >= 8


@pytest.mark.parametrize("path", STATS_MODULES, ids=lambda p: p.name)
def test_stats_module_imports_no_io_or_ui_library(path: Path) -> None:
    roots = imported_roots(path)
    assert not roots & BANNED
    assert roots <= ALLOWED | ALLOWED_STDLIB


@pytest.mark.parametrize("path", STATS_MODULES, ids=lambda p: p.name)
def test_stats_module_uses_postponed_annotations(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    futures = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "__future__"
        for alias in node.names
    }
    assert "annotations" in futures
