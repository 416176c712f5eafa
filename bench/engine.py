"""Time and peak memory of ``python -m cxlab analyze --all`` on a log (issue 2, part 7).

    python bench/engine.py --events data/events.parquet --experiments experiments
    python bench/engine.py --generate 10_000_000

Runs the CLI as a separate process (whole-process wall time, the median of
``--runs`` runs after one warm-up) and reads its peak resident memory from
``resource.getrusage(RUSAGE_CHILDREN)`` of a fresh child per run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PEAK_SNIPPET = (
    "import resource, subprocess, sys;"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL);"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
    "sys.exit(r.returncode)"
)


def run_once(events: Path, experiments: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``analyze --all`` process."""
    cmd = [sys.executable, "-m", "cxlab", "analyze", "--all", "--events", str(events),
           "--experiments", str(experiments)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SNIPPET, *cmd],
        capture_output=True, text=True, check=True, env=env, cwd=ROOT,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, int(out.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=Path)
    parser.add_argument("--experiments", type=Path, default=ROOT / "experiments")
    parser.add_argument("--generate", type=lambda s: int(s.replace("_", "")))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.generate:
        sys.path.insert(0, str(ROOT / "bench"))
        from generate_log import generate

        folder = generate(args.generate, ROOT / "bench" / "data")
        args.events, args.experiments = (
            folder / "events.parquet",
            folder / "experiments",
        )
    run_once(args.events, args.experiments)  # warm-up (file cache)
    runs = [run_once(args.events, args.experiments) for _ in range(args.runs)]
    result = {
        "events": str(args.events),
        "runs": args.runs,
        "median_seconds": round(statistics.median(r[0] for r in runs), 2),
        "peak_rss_mib": round(max(r[1] for r in runs), 1),
        "all_seconds": [round(r[0], 2) for r in runs],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
