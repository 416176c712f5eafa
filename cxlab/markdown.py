"""Tables drawn as Markdown: plain text escaped, badges coloured, one pipe table.

A pipe table (GitHub Flavored Markdown) is what the pages draw where a data grid
would cost more than it gives: ``st.markdown`` sends text, where ``st.dataframe``
makes a fresh browser tab load and start its grid (bench/RESULTS.md, page speed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SPECIAL = "\\`*_[]()<>#|~:$"


def escaped(text: object) -> str:
    """Plain text made safe inside Markdown (no links, styles or directives)."""
    return "".join(f"\\{c}" if c in SPECIAL else c for c in str(text))


def coloured(text: object, colour: str | None) -> str:
    """``text`` escaped, in one of Streamlit's Markdown colours (``:green[...]``)."""
    return f":{colour}[{escaped(text)}]" if colour else escaped(text)


def pipe_table(rows: Sequence[Mapping[str, str]]) -> str:
    """Rows whose cells are already Markdown as one pipe table.

    Args:
        rows: at least one row; the first row's keys are the column titles (our own
            words, not escaped).

    Returns:
        The table's Markdown: a header row, its delimiter row, one row per input.
    """
    head = list(rows[0])
    lines = [_pipe_row(head), _pipe_row(["---"] * len(head))]
    lines += [_pipe_row([row[title] for title in head]) for row in rows]
    return "\n".join(lines)


def _pipe_row(cells: Sequence[str]) -> str:
    """One row of a pipe table; a line break in a cell would end the table."""
    return "| " + " | ".join(" ".join(c.splitlines()) for c in cells) + " |"
