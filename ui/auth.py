"""Login and roles in the app: Streamlit's OIDC login and the roles file.

With an ``[auth]`` section in ``.streamlit/secrets.toml`` every visitor logs in with
the company's identity provider (``st.login``) and gets the role the roles file
gives their e-mail (:mod:`cxlab.access`); the file is ``CXLAB_ROLES_FILE``, else
``roles.yaml`` at the repository root. Without ``[auth]`` the app runs in local
single-user mode: one person on 127.0.0.1 with every role.

Every write calls :func:`require` on the server before it touches a file, so a
hidden button is never the only guard.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from cxlab.access import Action, Role, load_roles, role_of
from cxlab.access import may as role_may
from cxlab.access import require as require_role
from cxlab.editing import LOCAL_USER, Editor
from cxlab.errors import ConfigError
from cxlab.ui.cache import ROOT

ROLES_ENV = "CXLAB_ROLES_FILE"
LOCAL_ROLE: Role = "admin"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def login_configured() -> bool:
    """Whether ``[auth]`` is configured in the secrets (else local mode)."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def roles_file() -> Path:
    """The roles file: ``CXLAB_ROLES_FILE``, else ``roles.yaml`` in the repo."""
    return Path(os.environ.get(ROLES_ENV) or ROOT / "roles.yaml")


def current_role() -> Role | None:
    """The role of this session's user; every role in local mode.

    Returns:
        The role, or None for a visitor who is not logged in, not in the roles
        file, or when the roles file is broken.
    """
    if not login_configured():
        return LOCAL_ROLE
    if not st.user.is_logged_in:
        return None
    try:
        roles = load_roles(roles_file())
    except ConfigError:
        return None
    verified = st.user.get("email_verified")
    return role_of(roles, st.user.get("email"), email_verified=verified)


def may(action: Action) -> bool:
    """Whether this session's role may do an action (to enable its widgets)."""
    return role_may(current_role(), action)


def require(action: Action) -> None:
    """Refuse, on the server, an action this session's role may not do.

    Raises:
        AccessDeniedError: the role may not do it (the message says who may).
    """
    require_role(current_role(), action)


def editor() -> Editor:
    """Who is saving, for the audit trail: the e-mail, or "local user", and role."""
    user = st.user.get("email") if login_configured() else None
    return Editor(str(user or LOCAL_USER), current_role())


def _providers() -> list[str | None]:
    section = st.secrets["auth"]
    named = [k for k, v in section.items() if isinstance(v, Mapping)]
    return [None] if "client_id" in section or not named else named


def gate() -> None:
    """Stop the run with a login screen until the visitor may see the app."""
    if current_role() is not None:
        return
    st.title("CX Lab")
    if not st.user.is_logged_in:
        st.write("Log in with your company account to see the experiments.")
        for provider in _providers():
            label = f"Log in with {provider}" if provider else "Log in"
            st.button(label, on_click=st.login, args=(provider,), type="primary")
        st.stop()
    try:
        load_roles(roles_file())
    except ConfigError as exc:
        st.error(
            f"The roles file is broken, so nobody can be let in: {exc}",
            icon=":material/error:",
        )
    else:
        st.error(
            f"{st.user.get('email') or 'This account'} has no role in CX Lab. "
            "Ask an admin to add your address or domain to the roles file.",
            icon=":material/error:",
        )
    st.button("Log out", on_click=st.logout, key="auth_logout_refused")
    st.stop()


def sidebar_status() -> None:
    """Who is logged in with which role, and the logout button (or local mode)."""
    if not login_configured():
        address = st.get_option("server.address") or "every network interface"
        text = (
            "**Local single-user mode**: no login is configured, so you have every "
            f"role. The server listens on {address}"
        )
        if address in LOOPBACK:
            st.caption(f":material/lock_open: {text} only.")
        else:
            st.warning(
                f"{text}: anyone who reaches it can edit. Add a login (README).",
                icon=":material/warning:",
            )
        return
    st.caption(f":material/person: {st.user.get('email')} · **{current_role()}**")
    st.button("Log out", on_click=st.logout, key="auth_logout")
