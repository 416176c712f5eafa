"""Rewrite one section of bench/RESULTS.md, keeping everything else."""

from __future__ import annotations

import re
from pathlib import Path

MARKER = "<!-- notes below are kept when the table is rewritten -->"


def write_section(path: Path, heading: str, text: str) -> None:
    """Put ``text`` below the marker, replacing an earlier copy of its section.

    Args:
        path: the results file (made when missing).
        heading: the section's heading line, e.g. ``## App re-render ...``.
        text: the whole section, heading included.
    """
    content = path.read_text() if path.is_file() else f"{MARKER}\n"
    if MARKER not in content:
        content = content.rstrip("\n") + f"\n\n{MARKER}\n"
    head, tail = content.split(MARKER, 1)
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(tail):
        tail = pattern.sub(lambda _: text + "\n", tail, count=1)
    else:
        tail = tail.rstrip("\n") + "\n\n" + text
    path.write_text(head + MARKER + tail.rstrip("\n") + "\n")
