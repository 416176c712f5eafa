"""CX Lab's data step against DuckDB, pandas and the read floor (issue 5): one command.

    python bench/compare.py                       # 1M, 10M, 50M Parquet + 10M CSV
    python bench/compare.py --sizes 1_000_000 --csv-sizes "" --runs 3   # quick

For every log size and format it generates what is missing (bench/generate_log.py,
into the git-ignored bench/data), then runs each implementation in a fresh process:
one warm-up each (which also writes the implementation's daily table), then
``--runs`` rounds of one run of every implementation (interleaved, so a burst of
load on the shared machine hits all of them alike). Time is the whole process's
wall time (median), memory the peak RSS of the process
(``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in a fresh wrapper per run), CPU the
process's user + system seconds.

Implementations:

* ``cxlab`` — the data step alone: ``summarize`` over every experiment of the log
  (``log_health=False``, as ``analyze`` runs it: the app's Data page also counts
  every user of the whole log, measured separately in RESULTS.md);
* ``cxlab-streaming`` — the same with ``pl.Config.set_engine_affinity("streaming")``;
* ``analyze`` — the full ``python -m cxlab analyze --all`` (JSON of everything);
* ``duckdb`` — bench/impl_duckdb.py, the reduction in plain DuckDB SQL;
* ``pandas`` — bench/impl_pandas.py, the reduction in notebook-style pandas;
* ``floor`` — bench/impl_floor.py, the needed columns read with pyarrow + counts.

Every daily table (cxlab-streaming, duckdb, pandas) is checked against CX Lab's
``Summaries.daily`` (n exactly, sums to 1e-9 relative); a mismatch fails the run.
Every measured (size, format) is stored in bench/data/compare-results.json and
merged with earlier ones (``--fresh`` forgets them), so sizes can be measured at
different moments; each keeps its time, command and the engine's source hash. The
table, the machine, the load average seen, the versions, a stage profile of the data
step and the targets are written to ``--out`` (bench/RESULTS.md); text below the
notes marker in that file is kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / "data"
KEYS = ["experiment_id", "metric", "variant", "day"]
SUMS = ["sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]
REL_TOL = 1e-9
ABS_TOL = 1e-9
IMPLS = ("cxlab", "cxlab-streaming", "analyze", "duckdb", "pandas", "floor")
STORE = DATA / "compare-results.json"  # every measured config, merged across runs

# A fresh wrapper per run: the child's wall time, peak RSS (KiB) and CPU seconds.
WRAPPER = (
    "import json, resource, subprocess, sys, time;"
    "t = time.perf_counter();"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL);"
    "s = time.perf_counter() - t;"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
    "print(json.dumps([s, u.ru_maxrss, u.ru_utime + u.ru_stime]));"
    "sys.exit(r.returncode)"
)


# --- the CX Lab data step, run in its own process ---------------------------------


def run_cxlab(args: argparse.Namespace) -> None:
    """``summarize`` for every experiment of the folder; write ``daily``."""
    import polars as pl

    if args.engine != "auto":
        pl.Config.set_engine_affinity(args.engine)
    sys.path.insert(0, str(ROOT))
    from cxlab import summaries
    from cxlab.config import load_catalog, load_experiments
    from cxlab.events import resolve_source

    stages: dict[str, float] = {}
    if args.profile:
        _instrument(summaries, stages)
    start = time.perf_counter()
    catalog = load_catalog(args.experiments / "metrics.yaml")
    experiments = load_experiments(args.experiments, catalog)
    # As `analyze` runs it: without the log-wide user counts of the health page.
    result = summaries.summarize(
        resolve_source(args.events), experiments, catalog, log_health=False
    )
    stages["summarize"] = time.perf_counter() - start
    if args.out:
        result.daily.write_parquet(args.out)
    if args.profile:
        print(json.dumps(stages))


def _instrument(summaries, stages: dict[str, float]) -> None:
    """Time the scan (its ``collect_all``), the reduction and the daily tables."""
    import polars as pl

    from cxlab.summaries import daily, reduce

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    real_collect_all = pl.collect_all
    in_reduce = []

    def collect_all(*a, **k):
        name = "reduce: collect_all" if in_reduce else "stage 1: collect_all"
        return timed(name, real_collect_all)(*a, **k)

    def tracked(fn):
        def wrapper(*a, **k):
            in_reduce.append(True)
            try:
                return timed("reduce_log (stage 2)", fn)(*a, **k)
            finally:
                in_reduce.pop()

        return wrapper

    pl.collect_all = collect_all  # the stage modules' ``pl`` is polars itself
    summaries.reduce_log = tracked(reduce.reduce_log)  # as summarize looks them up
    summaries.cumulate = timed("cumulate", daily.cumulate)


# --- running and timing ------------------------------------------------------------


@dataclass
class Measure:
    impl: str
    size: int
    fmt: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_mib: float = 0.0
    check: str = "—"
    loads: list[float] = field(default_factory=list)  # 1-min load before each run

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan


def command(impl: str, events: Path, experiments: Path, out: Path) -> list[str]:
    py = sys.executable
    common = ["--events", str(events), "--experiments", str(experiments)]
    if impl == "analyze":
        return [py, "-m", "cxlab", "analyze", "--all", *common]
    if impl in ("cxlab", "cxlab-streaming"):
        engine = "streaming" if impl == "cxlab-streaming" else "auto"
        return [py, str(BENCH / "compare.py"), "_cxlab", *common, "--out", str(out),
                "--engine", engine]  # fmt: skip
    script = BENCH / f"impl_{impl}.py"
    return [py, str(script), *common, "--out", str(out)]


def run_once(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *cmd],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    seconds, kib, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, kib / 1024, cpu


def profile(events: Path, experiments: Path) -> dict[str, float]:
    """One instrumented run of the data step: seconds per stage."""
    cmd = command("cxlab", events, experiments, Path(os.devnull))
    cmd = [c for c in cmd if c not in ("--out", os.devnull)] + ["--profile"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(reference: Path, other: Path) -> str:
    """'ok' when the daily tables agree (n exactly, sums to 1e-9 relative)."""
    import polars as pl

    ref = pl.read_parquet(reference).select(*KEYS, "n", *SUMS)
    got = pl.read_parquet(other).select(*KEYS, "n", *SUMS)
    joined = ref.join(got, on=KEYS, how="full", suffix="_got", coalesce=True)
    problems = []
    if not (ref.height == got.height == joined.height):
        problems.append(
            f"rows: reference {ref.height}, got {got.height}, union {joined.height}"
        )

    def example(bad: pl.DataFrame, column: str) -> str:
        row = bad.row(0, named=True)
        where = "/".join(str(row[k]) for k in KEYS)
        return f"{where}: {row[column]} vs {row[column + '_got']}"

    bad_n = joined.filter(pl.col("n").ne_missing(pl.col("n_got")))
    if bad_n.height:
        problems.append(f"n on {bad_n.height} rows (e.g. {example(bad_n, 'n')})")
    for c in SUMS:
        a, b = pl.col(c), pl.col(f"{c}_got")
        tol = REL_TOL * pl.max_horizontal(a.abs(), b.abs()) + ABS_TOL
        bad = joined.filter(((a - b).abs() > tol) | a.is_null() | b.is_null())
        if bad.height:
            problems.append(f"{c} on {bad.height} rows (e.g. {example(bad, c)})")
    return "ok" if not problems else "MISMATCH: " + "; ".join(problems)


def _short(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ensure_log(size: int, fmt: str) -> tuple[Path, Path]:
    folder = DATA / str(size)
    events = folder / f"events.{fmt}"
    if not events.exists() or not (folder / "experiments").exists():
        sys.path.insert(0, str(BENCH))
        from generate_log import generate

        print(f"generating {size:,} events ({fmt}) …", flush=True)
        if fmt == "csv" and (folder / "events.parquet").exists():
            import polars as pl

            pl.read_parquet(folder / "events.parquet").write_csv(events)
        else:
            generate(size, DATA, csv=fmt == "csv")
    return events, folder / "experiments"


def measure(
    impls: list[str], size: int, fmt: str, runs: int, workdir: Path
) -> tuple[dict[str, Measure], dict[str, Path]]:
    """Warm up every implementation, then ``runs`` rounds, one run of each per round.

    Interleaving the rounds spreads any change in the machine's load (it is shared)
    over all implementations instead of penalising whichever ran during a burst.
    """
    events, experiments = ensure_log(size, fmt)
    outs = {i: workdir / f"{i}-{size}-{fmt}.parquet" for i in impls}
    cmds = {i: command(i, events, experiments, outs[i]) for i in impls}
    measures = {i: Measure(i, size, fmt) for i in impls}
    for impl in impls:
        run_once(cmds[impl])  # warm-up: file cache, and the daily table to check
    for _ in range(runs):
        for impl in impls:
            m = measures[impl]
            load_before = os.getloadavg()[0]
            seconds, peak, cpu = run_once(cmds[impl])
            m.seconds.append(seconds)
            m.cpu.append(cpu)
            m.peak_mib = max(m.peak_mib, peak)
            m.loads.append(load_before)
    for m in measures.values():
        print(f"{fmt:8} {size:>11,} {m.impl:16} median {m.median:7.2f}s  "
              f"runs {[round(s, 2) for s in m.seconds]}  "
              f"cpu {statistics.median(m.cpu):6.2f}s  peak {m.peak_mib:7.0f} MiB  "
              f"load {min(m.loads):.2f}–{max(m.loads):.2f}", flush=True)  # fmt: skip
    return measures, outs


# --- the report --------------------------------------------------------------------


def _ratio(a: Measure | None, b: Measure | None) -> str:
    if a is None or b is None or not a.seconds or not b.seconds:
        return "—"
    return f"{a.median / b.median:.2f}×"


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("polars", "duckdb", "pandas", "pyarrow", "numpy")
    return {"Python": platform.python_version()} | {n: version(n) for n in names}


def _engine_hash() -> str:
    """Fingerprint of the engine's source, so a table names the code it timed."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "cxlab").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _machine() -> dict[str, str]:
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "CPU": f"{cpu}, nproc = {os.cpu_count()}",
        "memory": f"{mem_kib / 2**20:.1f} GiB",
        "OS": platform.platform(),
    }


def write_report(path: Path, store: dict[str, dict]) -> None:
    """RESULTS.md from every stored config (notes below the marker are kept)."""
    entries = sorted(
        store.values(), key=lambda e: (e["fmt"] != "parquet", e["size"], e["fmt"])
    )
    results = {
        (e["size"], e["fmt"]): {m["impl"]: Measure(**m) for m in e["measures"]}
        for e in entries
    }
    profiles = {(e["size"], e["fmt"]): e["profile"] for e in entries if e["profile"]}
    lines = [
        "# Speed benchmark: CX Lab's data step vs DuckDB, pandas and the read floor",
        "",
        "Reproduce: `python bench/compare.py` (issue 5; options: `--help`). Each row:"
        " median wall time of whole fresh processes after a warm-up, their user +"
        " system CPU seconds (median) and peak RSS. Ratios divide the row's median"
        " time by DuckDB's, pandas' and the floor's (< 1 = the row is faster)."
        " \"numbers\": the row's daily table checked against CX Lab's"
        " `Summaries.daily` (n exactly, sums to 1e-9 relative).",
        "",
        "| log | measured (UTC) | engine source (sha256 of cxlab/*.py) | command |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {e['size'] / 1e6:g}M {e['fmt']} | {e['when']} | {e['engine']} |"
        f" `{e['command']}` |"
        for e in entries
    ]
    lines += [
        "",
        "| log | implementation | median s | runs s | CPU s | peak MiB | vs DuckDB"
        " | vs pandas | vs floor | load (1 min) | numbers |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for (size, fmt), row in results.items():
        for impl in IMPLS:
            m = row.get(impl)
            if m is None:
                continue
            lines.append(
                f"| {size / 1e6:g}M {fmt} | {impl} | {m.median:.2f} |"
                f" {', '.join(f'{s:.2f}' for s in m.seconds)} |"
                f" {statistics.median(m.cpu):.1f} | {m.peak_mib:,.0f} |"
                f" {_ratio(m, row.get('duckdb')) if impl != 'duckdb' else '—'} |"
                f" {_ratio(m, row.get('pandas')) if impl != 'pandas' else '—'} |"
                f" {_ratio(m, row.get('floor')) if impl != 'floor' else '—'} |"
                f" {min(m.loads):.2f}–{max(m.loads):.2f} | {_short(m.check)} |"
            )
    lines += ["", "## Targets (issue 5)", ""]
    lines += _targets(results)
    if profiles:
        lines += [
            "",
            "## Where the data step spends its time (one instrumented run each)",
            "",
            "| log | stage | seconds |",
            "| --- | --- | ---: |",
        ]
        for (size, fmt), stages in profiles.items():
            lines += [
                f"| {size / 1e6:g}M {fmt} | {k} | {v:.2f} |" for k, v in stages.items()
            ]
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in _machine().items()]
    lines += ["", "## Versions", ""]
    lines += [f"- {k} {v}" for k, v in _versions().items()]
    marker = "<!-- notes below are kept when the table is rewritten -->"
    notes = ""
    if path.exists() and marker in path.read_text():
        notes = path.read_text().split(marker, 1)[1]
    lines += ["", marker]
    path.write_text("\n".join(lines) + (notes or "\n"))


def _targets(results: dict[tuple[int, str], dict[str, Measure]]) -> list[str]:
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    for (size, fmt), row in results.items():
        cx, duck = row.get("cxlab"), row.get("duckdb")
        floor, pandas, full = row.get("floor"), row.get("pandas"), row.get("analyze")
        label = f"{size / 1e6:g}M {fmt}"
        if size < 10_000_000:
            label += " (informative: the targets apply at 10M and 50M)"
        if cx and duck:
            limit = 0.8 if fmt == "csv" else 0.7
            r = cx.median / duck.median
            out.append(f"- {label}: data step / DuckDB = {r:.2f} (target ≤ {limit}):"
                       f" {verdict(r <= limit)}")  # fmt: skip
        if cx and floor and fmt == "parquet":
            r = cx.median / floor.median
            out.append(f"- {label}: data step / floor = {r:.2f} (target ≤ 2.5):"
                       f" {verdict(r <= 2.5)}")  # fmt: skip
        if cx and pandas:
            r = pandas.median / cx.median
            out.append(f"- {label}: pandas / data step = {r:.2f} (target ≥ 4):"
                       f" {verdict(r >= 4)}")  # fmt: skip
        if cx and full:
            r = full.median / cx.median - 1
            out.append(f"- {label}: analyze --all adds {100 * r:.0f}% to the data step"
                       f" (target < 20%): {verdict(r < 0.2)}")  # fmt: skip
        best = min(
            (m for m in (cx, row.get("cxlab-streaming")) if m),
            key=lambda m: m.peak_mib,
            default=None,
        )
        if best and size >= 50_000_000:
            out.append(f"- {label}: peak memory {best.peak_mib / 1024:.2f} GiB"
                       f" ({best.impl}; target < 3 GB):"
                       f" {verdict(best.peak_mib * 2**20 < 3e9)}")  # fmt: skip
    parquet = sorted(
        (size, row["cxlab"].median)
        for (size, fmt), row in results.items()
        if fmt == "parquet" and "cxlab" in row
    )
    if len(parquet) >= 2:
        per_m = ", ".join(f"{s / 1e6:g}M: {t / s * 1e6:.3f}" for s, t in parquet)
        out.append(f"- linear growth, data-step seconds per million events: {per_m}")
    return out


# --- main ---------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_cxlab":
        parser = argparse.ArgumentParser()
        parser.add_argument("--events", type=Path, required=True)
        parser.add_argument("--experiments", type=Path, required=True)
        parser.add_argument("--out", type=Path)
        parser.add_argument("--engine", default="auto")
        parser.add_argument("--profile", action="store_true")
        run_cxlab(parser.parse_args(sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1_000_000,10_000_000,50_000_000")
    parser.add_argument("--csv-sizes", default="10_000_000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument(
        "--pandas-max",
        type=lambda s: int(s.replace("_", "")),
        default=50_000_000,
        help="skip pandas above this many events",
    )
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help=f"forget earlier results (else merged from {STORE.relative_to(ROOT)})",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    impls = [i for i in IMPLS if i in args.impls.split(",")]
    configs = [(s, "parquet") for s in _sizes(args.sizes)]
    configs += [(s, "csv") for s in _sizes(args.csv_sizes)]
    store: dict[str, dict] = {}
    if STORE.exists() and not args.fresh:
        store = json.loads(STORE.read_text())
    failed = False
    with tempfile.TemporaryDirectory(prefix="cxlab-bench-") as tmp:
        for size, fmt in configs:
            chosen = [
                i for i in impls if not (i == "pandas" and size > args.pandas_max)
            ]
            row, outputs = measure(chosen, size, fmt, args.runs, Path(tmp))
            if "cxlab" in outputs:
                row["cxlab"].check = "reference"
                for impl in ("cxlab-streaming", "duckdb", "pandas"):
                    if impl in outputs:
                        row[impl].check = check(outputs["cxlab"], outputs[impl])
                        print(f"  {impl}: {row[impl].check}", flush=True)
                        failed |= row[impl].check != "ok"
            stages: dict[str, float] = {}
            if "cxlab" in impls and not args.no_profile:
                events, experiments = ensure_log(size, fmt)
                stages = profile(events, experiments)
                print(f"  profile: {stages}", flush=True)
            sizes_arg = "--csv-sizes" if fmt == "csv" else "--sizes"
            other = "--sizes" if fmt == "csv" else "--csv-sizes"
            store[f"{size}-{fmt}"] = {
                "size": size,
                "fmt": fmt,
                "when": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}",
                "engine": _engine_hash(),
                "command": f"python bench/compare.py {sizes_arg} {size} {other} ''"
                f" --runs {args.runs} --impls {','.join(chosen)}",
                "measures": [asdict(m) for m in row.values()],
                "profile": stages,
            }
            STORE.parent.mkdir(parents=True, exist_ok=True)
            STORE.write_text(json.dumps(store, indent=1))
            write_report(args.out, store)
    print(f"wrote {args.out}")
    if failed:
        raise SystemExit("implementations disagree: see the table")


if __name__ == "__main__":
    main()
