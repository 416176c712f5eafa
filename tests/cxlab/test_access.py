"""The roles file: parsing, the most specific entry wins, what each role may do."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxlab.access import (
    ACTION_TEXT,
    AccessDeniedError,
    Roles,
    load_roles,
    may,
    parse_roles,
    require,
    role_of,
)
from cxlab.errors import ConfigError, InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "roles.example.yaml"
TEXT = """\
default: viewer
users:
  Ana@Example.com: admin
  bo@research.example.com: viewer
domains:
  example.com: viewer
  research.example.com: analyst
"""


@pytest.fixture
def roles() -> Roles:
    return parse_roles(TEXT)


def test_an_exact_address_wins_over_its_domain(roles: Roles) -> None:
    assert role_of(roles, "ana@example.com") == "admin"
    assert role_of(roles, "bo@research.example.com") == "viewer"


def test_the_longest_matching_domain_wins(roles: Roles) -> None:
    assert role_of(roles, "cy@research.example.com") == "analyst"
    assert role_of(roles, "di@lab.research.example.com") == "analyst"
    assert role_of(roles, "ed@example.com") == "viewer"


def test_addresses_and_domains_ignore_case(roles: Roles) -> None:
    assert role_of(roles, "  ANA@example.COM ") == "admin"
    assert role_of(roles, "Cy@Research.Example.com") == "analyst"


def test_a_lookalike_domain_does_not_match(roles: Roles) -> None:
    assert role_of(roles, "x@notexample.com") == "viewer"  # the default, not a match
    strict = parse_roles("domains: {example.com: admin}")
    assert role_of(strict, "x@badexample.com") is None


def test_unknown_users_are_refused_unless_the_default_says_viewer(
    roles: Roles,
) -> None:
    assert role_of(roles, "zed@other.org") == "viewer"
    assert role_of(parse_roles("users: {a@b.c: admin}"), "zed@other.org") is None
    assert role_of(parse_roles("default: none"), "zed@other.org") is None


def test_an_unverified_or_missing_email_is_refused(roles: Roles) -> None:
    assert role_of(roles, "ana@example.com", email_verified=False) is None
    assert role_of(roles, "ana@example.com", email_verified=True) == "admin"
    assert role_of(roles, None) is None
    assert role_of(roles, "no-at-sign") is None


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (None, set()),
        ("viewer", {"view"}),
        ("analyst", {"view", "save_config", "upload_log"}),
        (
            "admin",
            {
                "view",
                "save_config",
                "upload_log",
                "choose_server_path",
                "choose_engine",
            },
        ),
    ],
)
def test_each_role_may_do_what_the_roles_before_it_may_and_more(
    role: str | None, allowed: set[str]
) -> None:
    assert {a for a in ACTION_TEXT if may(role, a)} == allowed


def test_a_refusal_names_the_role_the_action_and_who_may() -> None:
    with pytest.raises(AccessDeniedError) as info:
        require("viewer", "save_config")
    assert str(info.value) == (
        "Not allowed: your role (viewer) may not save configs. This needs the "
        "analyst role or higher; ask an admin to add you to the roles file."
    )
    assert isinstance(info.value, InputError)  # shown like every input error
    with pytest.raises(AccessDeniedError, match="you have no role"):
        require(None, "view")
    require("admin", "choose_server_path")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: {a@b.c: owner}", "users.a@b.c: unknown role 'owner'"),
        ("default: superuser", "default: unknown role 'superuser'"),
        ("admins: [a@b.c]", "unknown key(s): admins"),
        ("users: [a@b.c]", "'users' must map names to roles"),
        ("- a", "expected a mapping"),
        ("users:\n  a@b.c: viewer\n  a@b.c: admin\n", "'a@b.c' is given twice"),
        ("users: {a: [", "not valid YAML"),
        ("users: !!python/object:os.system {}", "not valid YAML"),
    ],
)
def test_a_broken_roles_file_is_an_error_naming_the_file(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^roles\.yaml: ") as info:
        parse_roles(text)
    assert message in str(info.value)


def test_a_missing_roles_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"roles\.yaml: the roles file cannot be"):
        load_roles(tmp_path / "roles.yaml")


def test_the_documented_example_parses() -> None:
    roles = load_roles(EXAMPLE)
    assert role_of(roles, "ana.admin@example.com") == "admin"
    assert role_of(roles, "someone@example.com") == "viewer"
    assert role_of(roles, "stranger@gmail.com") is None
