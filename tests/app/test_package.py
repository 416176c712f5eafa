"""CX Lab as an installed package: the wheel built from this checkout, in a new venv.

The wheel is built from the checkout's files (copied, so the build leaves the tree
clean) without network access, installed into a virtual environment that sees the
machine's packages but not this checkout, and used from an empty folder as a
newcomer would: `cxlab sample`, `cxlab analyze`, `cxlab app` in a real browser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.test_browser import (
    PAGE_TIMEOUT_MS,
    PORTFOLIO_TABLE,
    assert_no_error_text,
    free_port,
    main_text,
    open_page,
    running,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_USERS = "20000"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a venv with the cxlab wheel installed."""
    source = tmp_path_factory.mktemp("source")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        path = ROOT / name.decode()
        if path.is_file():
            target = source / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source],
        check=True,
        timeout=300,
    )
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    (wheel,) = wheels.glob("cxlab-*.whl")
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", wheel],
        check=True,
        timeout=300,
    )
    return env_dir / "bin"


def run(
    command: list[str | Path], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def outside_checkout() -> dict[str, str]:
    """The environment without anything that would put this checkout on the path."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_the_wheel_installs_only_the_cxlab_package(installed: Path) -> None:
    python = installed / "python"
    purelib = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=installed,
    ).stdout.strip()
    ours = {p.name for p in Path(purelib).iterdir()} - {
        p.name for p in Path(sysconfig.get_path("purelib")).iterdir()
    }
    assert ours == {"cxlab", "cxlab-0.1.0.dist-info"}
    package = Path(purelib) / "cxlab"
    for part in ("stats/fixed.py", "ui/cache.py", "dashboard/app.py"):
        assert (package / part).is_file(), part
    assert (package / "dashboard" / "pages" / "results.py").is_file()
    assert (package / "dashboard" / "experiments" / "metrics.yaml").is_file()


def test_a_newcomer_runs_the_sample_from_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    env = outside_checkout()
    made = run([installed / "cxlab", "sample", "--users", SAMPLE_USERS], tmp_path, env)
    assert made.returncode == 0, made.stderr
    assert "wrote data/events.parquet" in made.stdout
    assert "example experiment configs" in made.stdout
    configs = sorted(p.name for p in (tmp_path / "experiments").glob("*.yaml"))
    assert configs == sorted(p.name for p in (ROOT / "experiments").glob("*.yaml"))

    where = run(
        [installed / "python", "-c", "import cxlab.stats; print(cxlab.stats.__file__)"],
        tmp_path,
        env,
    )
    assert "site-packages" in where.stdout
    assert str(ROOT) not in where.stdout

    events = ["--events", "data/events.parquet"]
    ours = run([installed / "cxlab", "analyze", "--all", *events], tmp_path, env)
    assert ours.returncode == 0, ours.stderr
    analyze = ["-m", "cxlab", "analyze", "--all", *events]
    module = run([installed / "python", *analyze], tmp_path, env)
    assert module.stdout == ours.stdout
    # The checkout's engine on the same log and configs gives the same bytes.
    checkout = run(
        [sys.executable, *analyze], tmp_path, {**env, "PYTHONPATH": str(ROOT)}
    )
    assert checkout.returncode == 0, checkout.stderr
    assert checkout.stdout == ours.stdout
    assert len(json.loads(ours.stdout)) == len(configs) - 1  # metrics.yaml


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a local TCP port listens on, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":  # LISTEN
            raw = bytes.fromhex(address)[::-1]
            found.add(".".join(str(b) for b in raw))
    return found


@pytest.fixture
def app_server(installed: Path, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`cxlab app` started in a folder that has only a sample log."""
    env = outside_checkout()
    run([installed / "cxlab", "sample", "--users", SAMPLE_USERS], tmp_path, env)
    port = free_port()
    command = [installed / "cxlab", "app", "--port", str(port)]
    with running(command, port, tmp_path, tmp_path / "server.log", env=env) as url:
        yield url, port
    # Stopping `cxlab app` (SIGTERM) stopped its server: nothing is left listening.
    assert listening_addresses(port) == set()


@pytest.mark.browser
def test_cxlab_app_serves_the_dashboard_on_this_machine_only(
    app_server: tuple[str, int], browser: object
) -> None:
    url, port = app_server
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    assert listening_addresses(port) == {"127.0.0.1"}
    open_page(page, url, "All experiments")
    page.wait_for_selector(PORTFOLIO_TABLE)
    text = main_text(page)
    assert "Proactive shipping e-mail" in text
    assert "Experiment portfolio" in text
    open_page(page, f"{url}/results?experiment=click-to-call", "Download")
    assert "Click-to-call" in main_text(page)
    assert_no_error_text(page)
