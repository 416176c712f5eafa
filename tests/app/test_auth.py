"""Login and roles in the app (AppTest): every write is checked on the server.

The identity is AppTest's ``user`` (what ``st.user`` reads after an OIDC login) and
``secrets`` holds an ``[auth]`` section; the roles file is a temporary one named by
``CXLAB_ROLES_FILE``. The browser test (test_browser_login.py) logs in for real.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cxlab.ui import cache
from tests.app.conftest import AUTH, executive_tables

ROOT = Path(__file__).resolve().parents[2]
NEW = "configs_exp_new_"
TIMEOUT = 120
ROLES = """\
users:
  vi@example.com: viewer
  an@example.com: analyst
  ad@example.com: admin
"""
LOG = "timestamp,user_id,event\n2026-09-01T10:00:00,u1,order\n"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Experiments, a data root, uploads and the roles file in tmp_path."""
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "events.csv").write_text(LOG)
    (tmp_path / "roles.yaml").write_text(ROLES)
    monkeypatch.setenv("CXLAB_ROLES_FILE", str(tmp_path / "roles.yaml"))
    monkeypatch.setenv("CXLAB_DATA_ROOTS", str(tmp_path / "logs"))
    monkeypatch.setenv("CXLAB_UPLOADS_DIR", str(tmp_path / "uploads"))
    return tmp_path


def as_user(script: str, lab: Path, email: str | None) -> AppTest:
    at = AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False}
    if email is not None:
        at.user = {"email": email, "is_logged_in": True}
    at.session_state["experiments_dir"] = str(lab / "experiments")
    return at.run()


def save_new_config(at: AppTest) -> AppTest:
    at.text_input(key=f"{NEW}id").input("faster-checkout")
    at.text_input(key=f"{NEW}variants").input("control: 0.5, one_click: 0.5")
    at.date_input(key=f"{NEW}start").set_value(dt.date(2026, 9, 1))
    at.multiselect(key=f"{NEW}primary_metric").set_value(["conversion"])
    at.button(key=f"FormSubmitter:{NEW}form-Apply to YAML").click().run()
    return at.button(key="configs_exp_save").click().run()


def test_a_viewer_save_is_refused_on_the_server_with_the_message(lab: Path) -> None:
    at = save_new_config(as_user("pages/configs.py", lab, "vi@example.com"))
    assert not at.exception
    assert at.error[0].value == (
        "Not allowed: your role (viewer) may not save configs. This needs the "
        "analyst role or higher; ask an admin to add you to the roles file."
    )
    assert not (lab / "experiments" / "faster-checkout.yaml").exists()
    assert not (lab / "experiments" / ".audit.jsonl").exists()


def test_an_analyst_save_works(lab: Path) -> None:
    at = save_new_config(as_user("pages/configs.py", lab, "an@example.com"))
    assert not at.exception
    assert not at.error
    assert at.success[0].value == "Saved experiments/faster-checkout.yaml"
    assert (lab / "experiments" / "faster-checkout.yaml").is_file()
    assert any(
        e.label.endswith("an@example.com · faster-checkout.yaml") for e in at.expander
    )


def test_a_visitor_who_is_not_logged_in_may_save_nothing(lab: Path) -> None:
    at = save_new_config(as_user("pages/configs.py", lab, None))
    assert "you have no role and may not save configs" in at.error[0].value
    assert not (lab / "experiments" / "faster-checkout.yaml").exists()


def upload(at: AppTest) -> AppTest:
    at.radio(key="data_source").set_value("Upload a file").run()
    return (
        at.file_uploader(key="data_upload")
        .set_value(("events.csv", LOG.encode(), "text/csv"))
        .run()
    )


def use_path(at: AppTest, typed: str) -> AppTest:
    at.radio(key="data_source").set_value("Path or glob on the server").run()
    at.text_input(key="data_path").input(typed)
    return at.button(key="data_use_path").click().run()


@pytest.mark.parametrize(
    ("email", "uploads"), [("vi@example.com", False), ("an@example.com", True)]
)
def test_uploads_need_the_analyst_role(lab: Path, email: str, uploads: bool) -> None:
    at = upload(as_user("pages/data.py", lab, email))
    assert not at.exception
    saved = [p for p in (lab / "uploads").rglob("*") if p.is_file()]
    assert len(saved) == uploads
    refused = [e.value for e in at.error if "may not upload event logs" in e.value]
    assert bool(refused) != uploads
    if uploads:
        assert at.session_state[cache.EVENTS_KEY] == str(saved[0])


@pytest.mark.parametrize(
    ("email", "allowed"),
    [("vi@example.com", False), ("an@example.com", False), ("ad@example.com", True)],
)
def test_server_paths_need_the_admin_role(lab: Path, email: str, allowed: bool) -> None:
    log = lab / "logs" / "events.csv"
    at = use_path(as_user("pages/data.py", lab, email), str(log))
    assert not at.exception
    chosen = at.session_state[cache.EVENTS_KEY] if allowed else None
    assert chosen == (str(log) if allowed else None)
    refused = [e.value for e in at.error if "use a server path" in e.value]
    assert bool(refused) != allowed


def test_the_app_asks_a_visitor_to_log_in_and_shows_no_page(lab: Path) -> None:
    at = as_user("app.py", lab, None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert "Log in with your company account" in at.markdown[0].value
    assert not executive_tables(at)
    assert not at.dataframe


def test_an_unknown_user_is_refused_with_a_logout_button(lab: Path) -> None:
    at = as_user("app.py", lab, "stranger@other.org")
    assert not at.exception
    assert at.error[0].value.startswith("stranger@other.org has no role in CX Lab.")
    assert [b.label for b in at.button] == ["Log out"]
    assert not executive_tables(at)
    assert not at.dataframe


def test_a_broken_roles_file_refuses_everyone_and_says_why(lab: Path) -> None:
    (lab / "roles.yaml").write_text("users: {ad@example.com: owner}\n")
    at = as_user("app.py", lab, "ad@example.com")
    assert at.error[0].value.startswith("The roles file is broken")
    assert "unknown role 'owner'" in at.error[0].value


def test_a_logged_in_user_sees_their_address_and_role(lab: Path) -> None:
    at = as_user("app.py", lab, "an@example.com")
    assert not at.exception
    assert "an@example.com · **analyst**" in at.sidebar.caption[-1].value
    assert "Log out" in [b.label for b in at.sidebar.button]


def test_without_a_login_the_sidebar_says_local_single_user_mode() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    local = at.sidebar.caption[-1].value
    assert "Local single-user mode" in local
    assert "listens on 127.0.0.1 only" in local
