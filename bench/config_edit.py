"""Pages drawn right after a config edit, with AppTest: does the edit cost a scan?

    python bench/config_edit.py            # 3 edits of each kind, print the table
    python bench/config_edit.py --runs 5

Drives ``app.py`` on the bundled sample log (``data/events.parquet``) in one
Streamlit session, on a copy of ``experiments/`` and an empty on-disk store. It
draws the portfolio and two results pages (click-to-call, proactive-shipping-email),
then edits ``checkout-aa-test.yaml`` on disk ``--runs`` times, as an analyst saving
the Configs page would, and after each edit times the portfolio and the two results
pages again (wall time of ``AppTest.run()``: server-side script time, no browser):

- a decision note: a field the scan does not read (``cxlab.summaries.as_reduced``);
- the end day: a field it reads, so the log is scanned again.

Run it from another checkout (``cd DIR && python /path/to/bench/config_edit.py``) to
time that checkout's code the same way.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path.cwd()  # the checkout measured
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import app_rerender  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

EDITED = "checkout-aa-test"
OTHERS = ("click-to-call", "proactive-shipping-email")
PAGES = {  # the row's name: (page, experiment)
    "portfolio": ("portfolio", None),
    **{f"results {e}": ("results", e) for e in OTHERS},
}


def _session(folder: Path) -> Callable[[str, str | None], float]:
    """A function drawing a page of one app session; it returns the seconds taken."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["experiments_dir"] = str(folder)

    def draw(page: str, experiment: str | None) -> float:
        if experiment is not None:
            at.query_params["experiment"] = experiment
        at.switch_page(f"pages/{page}.py")
        start = time.perf_counter()
        with app_rerender.server_like_navigation():
            at.run()
        took = time.perf_counter() - start
        if at.exception or at.error:
            raise RuntimeError(f"{page} {experiment}: {at.exception or at.error}")
        return took

    return draw


def _edits(config: Path) -> list[tuple[str, Callable[[int], None]]]:
    def note(i: int) -> None:
        text = config.read_text()
        config.write_text(text.replace("decision_note: ", f"decision_note: Edit {i}. "))

    def end(i: int) -> None:  # 2026-09-27 in the bundled config: a day earlier each
        text = config.read_text()
        config.write_text(re.sub(r"end: 2026-09-\d\d", f"end: 2026-09-{26 - i}", text))

    return [("a decision note", note), ("the end day", end)]


def measure(runs: int) -> str:
    """The table of medians and ranges, in Markdown."""
    with app_rerender.empty_store(), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "experiments"
        shutil.copytree(ROOT / "experiments", folder)
        draw = _session(folder)
        first = {name: draw(*shown) for name, shown in PAGES.items()}
        lines = [
            "| edit | page | median s | min–max s |",
            "| --- | --- | ---: | ---: |",
            *(f"| (none: first visit) | {p} | {t:.2f} | |" for p, t in first.items()),
        ]
        for label, edit in _edits(folder / f"{EDITED}.yaml"):
            times: dict[str, list[float]] = {name: [] for name in PAGES}
            for i in range(runs):
                edit(i)
                for name, shown in PAGES.items():
                    times[name].append(draw(*shown))
            lines += [
                f"| {label} | {name} | {statistics.median(ts):.2f} "
                f"| {min(ts):.2f}–{max(ts):.2f} |"
                for name, ts in times.items()
            ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="edits of each kind")
    args = parser.parse_args(argv)
    print(measure(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
