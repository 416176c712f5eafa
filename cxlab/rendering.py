"""Charts rendered by vl-convert in a process of their own (pictures, exports).

vl-convert keeps the GIL for the whole of a call: measured here, a 2,000-point PNG
held it 0.27 s, the first inlined Vega bundle 1.5 s. In the dashboard's process
every session's script and the server's websocket would stall that long whenever
a chart was drawn or exported. One worker process, started by the first call and
kept, renders instead; the caller waits for its own answer only, one call at a
time.

The worker is a plain ``python -P -c`` child reading pickled calls on its stdin and
writing pickled answers on its stdout (multiprocessing's spawn would run the
caller's main script again in it). It imports only vl-convert and ends when its
stdin closes, that is when the process that started it ends.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
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

_lock = threading.Lock()
_worker: subprocess.Popen[bytes] | None = None


class RenderError(RuntimeError):
    """vl-convert refused a chart, or the export process ended."""


def render(function: str, *args: Any, **kwargs: Any) -> Any:
    """``vl_convert.<function>(*args, **kwargs)``, run in the export process.

    Raises:
        RenderError: vl-convert's error, or the worker ended (the next call starts
            a new one).
    """
    global _worker
    with _lock:
        if _worker is None or _worker.poll() is not None:
            _worker = subprocess.Popen(
                [sys.executable, "-P", "-c", WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        try:
            ok, answer = _ask(_worker, (function, args, kwargs))
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            _worker.kill()
            _worker.wait()
            _worker = None
            raise RenderError(f"the chart export process ended ({exc!r})") from exc
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
