"""Who may do what: the roles file, the role of an e-mail, and the actions of a role.

Three roles, each able to do everything the one before it can:

- ``viewer`` sees every page and changes nothing;
- ``analyst`` also saves experiment and metric configs and uploads event logs;
- ``admin`` also chooses server paths (inside the data roots) as the event log,
  and the reduction engine (and where Spark runs) on the Data page.

The roles file is YAML (``roles.example.yaml`` documents it)::

    default: none              # unknown users: none (refused, the default) | viewer
    users:                     # exact e-mail addresses (case does not matter)
      ana@example.com: admin
    domains:                   # e-mail domains; a sub-domain matches its parent
      example.com: viewer
      research.example.com: analyst

The most specific entry wins: an exact address, then the longest matching domain,
then ``default``. An identity whose provider says ``email_verified: false`` is
refused whatever the file says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from cxlab.errors import ConfigError, InputError

Role = Literal["viewer", "analyst", "admin"]
Action = Literal[
    "view", "save_config", "upload_log", "choose_server_path", "choose_engine"
]
ROLES: tuple[Role, ...] = get_args(Role)
NO_ROLE = "none"
# The least role that may do each action (ROLES is ordered from least to most).
LEAST_ROLE: dict[Action, Role] = {
    "view": "viewer",
    "save_config": "analyst",
    "upload_log": "analyst",
    "choose_server_path": "admin",
    "choose_engine": "admin",
}
ACTION_TEXT: dict[Action, str] = {
    "view": "see this app",
    "save_config": "save configs",
    "upload_log": "upload event logs",
    "choose_server_path": "use a server path as the event log",
    "choose_engine": "choose the reduction engine",
}
KEYS = frozenset({"default", "users", "domains"})


class AccessDeniedError(InputError):
    """A request the current role may not make; the message says who may."""


@dataclass(frozen=True)
class Roles:
    """The parsed roles file: exact addresses, domains and the default."""

    users: Mapping[str, Role] = field(default_factory=dict)
    domains: Mapping[str, Role] = field(default_factory=dict)
    default: Role | None = None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice (it would hide a role)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"line {line}: '{key}' is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping
)


def _role(value: Any, where: str, source: str) -> Role:
    if value not in ROLES:
        raise ConfigError(
            source, None, f"{where}: unknown role {value!r} (use {', '.join(ROLES)})"
        )
    return value


def _section(data: dict[str, Any], key: str, source: str) -> dict[str, Role]:
    entries = data.get(key) or {}
    if not isinstance(entries, dict):
        raise ConfigError(source, None, f"'{key}' must map names to roles")
    return {
        str(name).strip().lower(): _role(role, f"{key}.{name}", source)
        for name, role in entries.items()
    }


def parse_roles(text: str, source: str = "roles.yaml") -> Roles:
    """Parse the text of a roles file.

    Args:
        text: the YAML text.
        source: the file's name, for error messages.

    Returns:
        The roles.

    Raises:
        ConfigError: not YAML, a key given twice, an unknown key or role.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(source, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(source, None, "expected a mapping with users and domains")
    if unknown := sorted(set(data) - KEYS):
        raise ConfigError(source, None, f"unknown key(s): {', '.join(unknown)}")
    default = data.get("default", NO_ROLE)
    return Roles(
        users=_section(data, "users", source),
        domains=_section(data, "domains", source),
        default=None if default == NO_ROLE else _role(default, "default", source),
    )


def load_roles(path: Path) -> Roles:
    """Read and parse a roles file.

    Raises:
        ConfigError: the file is missing or does not parse.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(path.name, None, "the roles file cannot be read") from None
    return parse_roles(text, path.name)


def role_of(
    roles: Roles, email: str | None, *, email_verified: bool | None = None
) -> Role | None:
    """The role of an e-mail address: the most specific entry wins.

    Args:
        roles: the parsed roles file.
        email: the address the identity provider vouches for.
        email_verified: the provider's ``email_verified`` claim, when it sends one.

    Returns:
        The role, or None when the user is refused.
    """
    if not email or "@" not in email or email_verified is False:
        return None
    address = email.strip().lower()
    if address in roles.users:
        return roles.users[address]
    domain = address.rpartition("@")[2]
    labels = domain.split(".")
    for start in range(len(labels)):  # longest (most specific) domain first
        candidate = ".".join(labels[start:])
        if candidate in roles.domains:
            return roles.domains[candidate]
    return roles.default


def may(role: Role | None, action: Action) -> bool:
    """Whether a role may do an action (no role may do nothing)."""
    if role is None:
        return False
    return ROLES.index(role) >= ROLES.index(LEAST_ROLE[action])


def require(role: Role | None, action: Action) -> None:
    """Refuse an action the role may not do, with a message that says who may.

    Raises:
        AccessDeniedError: the role may not do the action.
    """
    if may(role, action):
        return
    least = LEAST_ROLE[action]
    who = f"your role ({role})" if role else "you have no role and"
    raise AccessDeniedError(
        f"Not allowed: {who} may not {ACTION_TEXT[action]}. This needs the "
        f"{least} role or higher; ask an admin to add you to the roles file."
    )
