"""Shared fixtures of the app tests: the repo root, the sample log, engine results."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxlab.analysis import ExperimentResult
from cxlab.api import analyze_folder

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "events.parquet"
EXPERIMENTS = ROOT / "experiments"
TIMEOUT = 180  # seconds per AppTest run: 2 shared cores, the first run scans the log


@pytest.fixture(scope="session")
def timeout() -> int:
    """Seconds per AppTest run."""
    return TIMEOUT


@pytest.fixture(scope="session")
def sample_log() -> Path:
    """The bundled sample log, generated (seeded) when missing."""
    if not SAMPLE.is_file():
        from cxlab.sample import write_sample

        write_sample(SAMPLE)
    return SAMPLE


@pytest.fixture(scope="session")
def engine_results(sample_log: Path) -> dict[str, ExperimentResult]:
    """Every experiment analysed by the engine directly (no Streamlit, no cache)."""
    results = analyze_folder(sample_log, experiments_dir=EXPERIMENTS)
    return {r.experiment.id: r for r in results}
