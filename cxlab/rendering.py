"""Charts rendered by vl-convert in processes of their own (pictures, exports).

vl-convert keeps the GIL for the whole of a call: measured here, a 2,000-point PNG
held it 0.27 s, the first inlined Vega bundle 1.5 s. In the dashboard's process
every session's script and the server's websocket would stall that long whenever
a chart was drawn or exported. Worker processes (:data:`WORKERS`), each started by
the first call that finds no idle one of its kind and kept, render instead, while
the caller's thread waits for its own answer only (the pages' pictures,
:mod:`cxlab.ui.drawing`, are made two at a time while the page's script goes on).

A worker is a plain ``python -P -c`` child reading pickled calls on its stdin and
writing pickled answers on its stdout (multiprocessing's spawn would run the
caller's main script again in it). It imports only vl-convert and ends when its
stdin closes, that is when the process that started it ends.

Workers come in two kinds, by the fonts they have (:data:`Fonts`). vl-convert
measures each string Vega lays out by laying it out with usvg, which reads a font
of the system's from its file anew each time it uses it (fontdb's ``Source::File``)
and one of vl-convert's own from memory. The system's Liberation Sans comes first
when both are there, and a picture then takes about twice as long
(bench/RESULTS.md, chart pictures). So the pictures' workers (``"own"``) see none
of the system's fonts (``own-fonts.conf``, read by vl-convert's font database on
Linux; elsewhere it scans the system's folders all the same): a browser draws a
picture's text, and needs from the server only the widths, in Liberation Sans. An
export drawn on the server, a PNG, gets a worker with every font of the system's
(``"system"``), for text in other scripts.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

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

Fonts = Literal["own", "system"]
# The fonts of the pictures' workers: vl-convert's own Liberation Sans only.
OWN_FONTS = {"FONTCONFIG_FILE": str(Path(__file__).with_name("own-fonts.conf"))}
# Pictures: a new view of a results page needs two or three new pictures, and on
# the two cores it is measured on a new as-of day's three took 70 ms two at a time
# against 80 ms one after another (bench/RESULTS.md, chart pictures). Exports are
# made one at a time, when a download is clicked.
WORKERS: dict[Fonts, int] = {"own": 2, "system": 1}
# The workers of each kind, None for one not started (or ended), the idle ones
# here: last in, first out, so a lone user's pictures go to the warm worker.
_workers: dict[Fonts, queue.LifoQueue[subprocess.Popen[bytes] | None]] = {
    fonts: queue.LifoQueue() for fonts in WORKERS
}
for _fonts, _count in WORKERS.items():
    for _ in range(_count):
        _workers[_fonts].put(None)


class RenderError(RuntimeError):
    """vl-convert refused a chart, or the export process ended."""


def render(function: str, *args: Any, fonts: Fonts = "system", **kwargs: Any) -> Any:
    """``vl_convert.<function>(*args, **kwargs)``, run in an idle worker.

    Waits for a worker when every one of the kind is busy.

    Args:
        function: the name of vl-convert's function.
        *args: its arguments.
        fonts: ``"own"`` for a picture a browser draws (text measured in
            vl-convert's own Liberation Sans), ``"system"`` for an export
            vl-convert draws (every font of the system's).
        **kwargs: its keyword arguments.

    Raises:
        RenderError: vl-convert's error, or the worker ended (the next call starts
            a new one).
    """
    workers = _workers[fonts]
    worker = workers.get()
    try:
        if worker is None or worker.poll() is not None:
            worker = subprocess.Popen(
                [sys.executable, "-P", "-c", WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, **OWN_FONTS} if fonts == "own" else None,
            )
        ok, answer = _ask(worker, (function, args, kwargs))
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        if worker is not None:
            worker.kill()
            worker.wait()
        worker = None
        raise RenderError(f"the chart export process ended ({exc!r})") from exc
    finally:
        workers.put(worker)
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
