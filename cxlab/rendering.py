"""Charts rendered by vl-convert in processes of their own (pictures, exports).

vl-convert keeps the GIL for the whole of a call: measured here, a 2,000-point PNG
held it 0.27 s, the first inlined Vega bundle 1.5 s. In the dashboard's process
every session's script and the server's websocket would stall that long whenever
a chart was drawn or exported. ``WORKERS`` worker processes, each started by the
first call that finds no idle one and kept, render instead: two charts at once,
while the caller's thread waits for its own answer only (the pages' pictures,
:mod:`cxlab.ui.drawing`, are made two at a time while the page's script goes on).

A worker is a plain ``python -P -c`` child reading pickled calls on its stdin and
writing pickled answers on its stdout (multiprocessing's spawn would run the
caller's main script again in it). It imports only vl-convert and ends when its
stdin closes, that is when the process that started it ends.
"""

from __future__ import annotations

import pickle
import queue
import subprocess
import sys
from typing import Any

WORKER = """
import os, pickle, sys
answers = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # whatever else is printed goes to stderr, not into the answers
import vl_convert
calls = sys.stdin.buffer
while True:
    try:
        function, args, kwargs = pickle.load(calls)
    except EOFError:
        break
    try:
        answer = (True, getattr(vl_convert, function)(*args, **kwargs))
    except Exception as exc:
        answer = (False, f"{type(exc).__name__}: {exc}")
    pickle.dump(answer, answers)
    answers.flush()
"""

# Two: a new view of a results page needs two or three new pictures, and on the
# two cores it is measured on a new as-of day's three took 178 ms two at a time
# against 220 ms one after another (bench/RESULTS.md, chart pictures).
WORKERS = 2
# The workers, None for one not started (or ended), the idle ones here: last in,
# first out, so a lone user's pictures go to the worker whose Vega is warm.
_workers: queue.LifoQueue[subprocess.Popen[bytes] | None] = queue.LifoQueue()
for _ in range(WORKERS):
    _workers.put(None)


class RenderError(RuntimeError):
    """vl-convert refused a chart, or the export process ended."""


def render(function: str, *args: Any, **kwargs: Any) -> Any:
    """``vl_convert.<function>(*args, **kwargs)``, run in an idle worker.

    Waits for a worker when every one is busy.

    Raises:
        RenderError: vl-convert's error, or the worker ended (the next call starts
            a new one).
    """
    worker = _workers.get()
    try:
        if worker is None or worker.poll() is not None:
            worker = subprocess.Popen(
                [sys.executable, "-P", "-c", WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        ok, answer = _ask(worker, (function, args, kwargs))
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        if worker is not None:
            worker.kill()
            worker.wait()
        worker = None
        raise RenderError(f"the chart export process ended ({exc!r})") from exc
    finally:
        _workers.put(worker)
    if not ok:
        raise RenderError(answer)
    return answer


def _ask(worker: subprocess.Popen[bytes], call: tuple[str, tuple, dict]) -> Any:
    """Send one call down the worker's stdin; read its answer from its stdout."""
    calls, answers = worker.stdin, worker.stdout
    if calls is None or answers is None:
        raise OSError("the export process has no pipes")
    pickle.dump(call, calls)
    calls.flush()
    return pickle.load(answers)
