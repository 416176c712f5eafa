"""Login for real: headless Chromium, `streamlit run` and a local OIDC provider.

The provider is oidc-provider-mock (requirements-dev.txt) on a free port: its
authorize page takes any subject, and the subject is the user's e-mail. The app runs
from a copy of the repository in a temporary folder, with an ``[auth]`` section in
its ``.streamlit/secrets.toml`` and a ``roles.yaml`` at its root, so the config it
saves lands in the copy. Nothing of the app is mocked.

Flow: a viewer logs in, saving an edited config is refused with the message, logs
out; an analyst logs in, the save works, logs out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.test_browser import free_port, wait_until_idle

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 120
TIMEOUT_MS = 180_000
COPIED = ("app.py", "pages", "ui", "cxlab", "stats", "experiments")
ROLES = "users:\n  viewer@example.com: viewer\n  analyst@example.com: analyst\n"
EXPERIMENT = "checkout-aa-test"
SECRETS = """\
[auth]
redirect_uri = "http://127.0.0.1:{app}/oauth2callback"
cookie_secret = "cxlab-browser-test-cookie-secret"
client_id = "cxlab"
client_secret = "cxlab-test-client-secret"
server_metadata_url = "http://127.0.0.1:{idp}/.well-known/openid-configuration"
"""


def start(command: list[str], cwd: Path, log: Path, ready_url: str) -> subprocess.Popen:
    """Start a server and wait until ``ready_url`` answers 200."""
    env = {**os.environ, "AUTHLIB_INSECURE_TRANSPORT": "1"}  # plain http on loopback
    env.pop("CXLAB_ROLES_FILE", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + STARTUP_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"{command[2]} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(ready_url, timeout=5) as r:
                if r.status == 200:
                    return process
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{command[2]} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def app(
    sample_log: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The OIDC provider and the app with a login: the app's URL and its folder."""
    copy = tmp_path_factory.mktemp("cxlab-login")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            shutil.copy2(source, copy / name)
    (copy / "data").mkdir()
    shutil.copy2(sample_log, copy / "data" / sample_log.name)
    (copy / ".streamlit").mkdir()
    shutil.copy2(ROOT / ".streamlit" / "config.toml", copy / ".streamlit")
    idp_port, app_port = free_port(), free_port()
    (copy / ".streamlit" / "secrets.toml").write_text(
        SECRETS.format(app=app_port, idp=idp_port)
    )
    (copy / "roles.yaml").write_text(ROLES)
    idp = start(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(idp_port)],
        copy,
        copy / "idp.log",
        f"http://127.0.0.1:{idp_port}/.well-known/openid-configuration",
    )
    run = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless"]
    try:
        streamlit = start(
            [*run, "true", "--server.port", str(app_port)],
            copy,
            copy / "streamlit.log",
            f"http://127.0.0.1:{app_port}/_stcore/health",
        )
        try:
            yield f"http://127.0.0.1:{app_port}", copy
        finally:
            stop(streamlit)
    finally:
        stop(idp)


def wait_for_text(page: object, text: str) -> None:
    page.wait_for_function(
        "(t) => document.body.innerText.includes(t)", arg=text, timeout=TIMEOUT_MS
    )


def log_in(page: object, app: str, email: str) -> None:
    page.goto(app)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector('input[name="sub"]')  # the provider's authorize page
    page.fill('input[name="sub"]', email)
    page.get_by_role("button", name="Authorize").click()
    wait_for_text(page, email)  # back in the app, the sidebar names the user
    wait_until_idle(page)


def log_out(page: object) -> None:
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="End session").click()  # the provider's page
    page.get_by_role("button", name="Log in").wait_for(timeout=TIMEOUT_MS)


def save_existing_config(page: object, app: str, owner: str) -> None:
    """On the Configs page: open an experiment, change its owner, apply, save."""
    page.goto(f"{app}/configs")
    page.get_by_role("tab", name="Experiment").click()
    wait_until_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Start from").first.click()
    page.get_by_role("option", name=EXPERIMENT).click()
    wait_until_idle(page)
    page.get_by_label("Owner").first.fill(owner)
    page.get_by_role("button", name="Apply to YAML").first.click()
    wait_for_text(page, f"+owner: {owner}")
    wait_until_idle(page)
    page.get_by_role("button", name="Save", exact=True).first.click()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def stamp(path: Path) -> tuple[int, int]:
    return path.stat().st_ino, path.stat().st_mtime_ns


def test_a_viewer_is_refused_a_save_and_an_analyst_saves(
    page: object, app: tuple[str, Path]
) -> None:
    url, folder = app
    config = folder / "experiments" / f"{EXPERIMENT}.yaml"
    before = stamp(config)
    log_in(page, url, "viewer@example.com")
    assert (
        "viewer@example.com · viewer" in page.get_by_test_id("stSidebar").inner_text()
    )
    save_existing_config(page, url, "viewer-team")
    wait_for_text(page, "Not allowed: your role (viewer) may not save configs.")
    assert stamp(config) == before
    log_out(page)

    log_in(page, url, "analyst@example.com")
    save_existing_config(page, url, "analyst-team")
    wait_for_text(page, f"Saved experiments/{EXPERIMENT}.yaml")
    assert stamp(config) != before
    assert "owner: analyst-team" in config.read_text()
    log_out(page)
