"""The one family of user-facing errors: bad input, named precisely.

The CLI maps every :class:`InputError` to exit code 2 and prints its message; the app
shows it in an error box. Anything else is an internal fault (exit code 1).
"""

from __future__ import annotations

from pathlib import Path


def printable(text: str, keep: str = "") -> str:
    r"""The text with control and other unprintable characters escaped.

    Args:
        text: text that may come from the input (a key, a value, a file name).
        keep: characters to leave as they are (``"\n"`` for multi-line messages).

    Returns:
        The text, each unprintable character written as its Python escape
        (``\x1b``, ``\t``, ``\u2028``), so a message never moves the cursor or
        colours the terminal.
    """
    return "".join(
        ch if ch.isprintable() or ch in keep else ascii(ch)[1:-1] for ch in text
    )


class InputError(Exception):
    """Bad input from the user: a log, a config or an argument.

    The message always names where the problem is: the file, and the line (configs)
    or the column and the first offending rows (event logs).
    """


class ConfigError(InputError):
    """A metric catalog or experiment YAML that breaks CONTRACT §2-3.

    The file name and the message are stored with control characters escaped.
    """

    def __init__(self, file: Path | str, line: int | None, message: str) -> None:
        self.file = printable(str(file))
        self.line = line
        self.detail = printable(message)
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, int | None, str]]:
        """Pickle with the constructor's arguments (the app caches configs)."""
        return type(self), (self.file, self.line, self.detail)


class EventLogError(InputError):
    """An event log that breaks CONTRACT §1."""

    def __init__(
        self,
        file: Path | str,
        message: str,
        *,
        column: str | None = None,
        rows: str | None = None,
    ) -> None:
        self.file = printable(str(file))
        self.column = None if column is None else printable(column)
        self.rows = None if rows is None else printable(rows, keep="\n")
        self.detail = printable(message)
        text = f"{self.file}: {self.detail}"
        if self.column is not None:
            text += f" (column '{self.column}')"
        if self.rows:
            text += f"\nFirst offending rows:\n{self.rows}"
        super().__init__(text)
