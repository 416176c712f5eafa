"""Where the dashboard's files are: the bundled app and examples, and the workspace.

A checkout runs the app from its root (``app.py``, ``pages/``, ``experiments/``,
``.streamlit/config.toml``). An installed wheel carries the same files in
``cxlab/dashboard/`` (``package-dir`` in pyproject.toml), and ``cxlab app`` runs them
against the folder it is started in, the *workspace*: the sample log goes to its
``data/`` and the configs live in its ``experiments/``.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

WORKSPACE_ENV = "CXLAB_WORKSPACE"
_PACKAGE = Path(__file__).resolve().parent
_INSTALLED_APP = _PACKAGE / "dashboard"


def app_folder() -> Path:
    """The folder of ``app.py`` and ``pages/``: the wheel's copy, else the checkout."""
    return _INSTALLED_APP if _INSTALLED_APP.is_dir() else _PACKAGE.parent


def workspace() -> Path:
    """``CXLAB_WORKSPACE``, else the checkout's root, else (installed) the cwd."""
    if setting := os.environ.get(WORKSPACE_ENV):
        return Path(setting).resolve()
    return Path.cwd().resolve() if _INSTALLED_APP.is_dir() else _PACKAGE.parent


def add_examples(folder: Path) -> list[str]:
    """Copy the bundled experiment configs into ``folder/experiments`` if it has none.

    Returns:
        One line per thing done, for the user (empty when the folder had configs).
    """
    target = folder / "experiments"
    if target.is_dir() and any(target.glob("*.y*ml")):
        return []
    source = app_folder() / "experiments"
    if source.resolve() == target.resolve():
        return []
    target.mkdir(parents=True, exist_ok=True)
    for config in sorted(source.glob("*.yaml")):
        shutil.copyfile(config, target / config.name)
    return [f"added the example experiment configs to {target}"]


def streamlit_flags(address: str, port: int | None) -> list[str]:
    """The bundled ``.streamlit/config.toml`` as ``streamlit run`` flags.

    Flags, because a wheel's config file is not where Streamlit looks (the current
    folder or the home folder); ``address`` and ``port`` come last and win.
    """
    config = tomllib.loads(
        (app_folder() / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    )
    flags = [
        f"--{section}.{key}={_flag_value(value)}"
        for section, options in config.items()
        for key, value in options.items()
    ]
    flags.append(f"--server.address={address}")
    if port is not None:
        flags.append(f"--server.port={port}")
    return flags


def _flag_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
