"""DESIGN's arrows, UI → engine → stats: cxlab never imports Streamlit or the UI.

Two guards: a static one over the source (every ``import``, also inside functions)
and a live one that imports every cxlab module in a fresh interpreter and looks at
``sys.modules``, which also catches Streamlit pulled in through a third party.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CXLAB_FILES = sorted((ROOT / "cxlab").rglob("*.py"))
STATS_FILES = sorted((ROOT / "stats").rglob("*.py"))
CXLAB_BANNED = {"streamlit", "pages", "ui", "app"}
STATS_BANNED = {"cxlab", "polars", "streamlit", "ui", "pages"}


def room(module: str) -> str:
    """The room (DESIGN.md) a module lives in: ``cxlab.stats.x`` is in ``stats``."""
    parts = module.split(".")
    if parts[0] == "cxlab" and len(parts) > 1 and parts[1] in ("stats", "ui"):
        return parts[1]
    return parts[0]


def imported_roots(path: Path) -> set[str]:
    """The rooms of every module a file imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {room(name) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] != "cxlab":  # stats/ and ui/ are cxlab.stats and cxlab.ui
        parts = ("cxlab", *parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_packages_have_modules() -> None:
    assert len(CXLAB_FILES) >= 15
    assert (ROOT / "stats" / "shrinkage.py") in STATS_FILES


@pytest.mark.parametrize("path", CXLAB_FILES, ids=module_name)
def test_cxlab_module_imports_no_streamlit_pages_or_ui(path: Path) -> None:
    assert not imported_roots(path) & CXLAB_BANNED


@pytest.mark.parametrize("path", STATS_FILES, ids=module_name)
def test_stats_module_imports_no_cxlab_or_polars(path: Path) -> None:
    assert not imported_roots(path) & STATS_BANNED


IMPORT_ALL = """
import importlib, json, sys
loaded = {}
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    loaded[name] = sorted(m for m in sys.modules if m.split(".")[0] == "streamlit")
print(json.dumps(loaded))
"""


def test_importing_every_cxlab_module_loads_no_streamlit() -> None:
    # cxlab.__main__ runs the command line when imported; it imports only cxlab.cli.
    names = [module_name(p) for p in CXLAB_FILES if p.name != "__main__.py"]
    names += [module_name(p) for p in STATS_FILES]
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, json.dumps(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded = json.loads(done.stdout)
    assert list(loaded) == names  # every module was imported
    first = next((name for name, mods in loaded.items() if mods), None)
    assert first is None, f"importing {first} loaded {loaded[first][:3]}"
