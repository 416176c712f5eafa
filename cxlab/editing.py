"""Editing config files like a real tool: round trip, no lost update, audit trail.

- :func:`apply_changes` applies a form's edits to a config's original text with a
  round-trip YAML library (ruamel.yaml), so comments, key order and the style of
  untouched values stay; no edit means the text comes back byte for byte. The
  original text is first read by the one config loader (:func:`cxlab.config.
  parse_yaml`), which refuses aliases, anchors and tags before ruamel sees them;
  the result is validated by the caller through the same loader.
- :func:`write_config` saves a config only when the file on disk is still the one
  the editor opened (its content hash), checks the editor's role, writes
  atomically (a temporary file in the same folder, fsync, :func:`os.replace`) and
  appends who, when and the unified diff to an append-only JSONL audit trail. The
  check and the write happen under an exclusive lock on the audit file, so two
  saves of the same app (or two apps on one machine) cannot interleave.
"""

from __future__ import annotations

import datetime as dt
import difflib
import fcntl
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from cxlab.access import Role, require
from cxlab.config import parse_yaml
from cxlab.errors import InputError

ABSENT = "absent"  # the content hash of a file that does not exist
AUDIT_FILE = ".audit.jsonl"
AUDIT_ENV = "CXLAB_AUDIT_FILE"
LOCAL_USER = "local user"
OUTSIDE = "an edit outside CX Lab"


# --- opening and hashing -----------------------------------------------------------


def content_hash(data: bytes) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    return hashlib.sha256(data).hexdigest()


def file_hash(path: Path) -> str:
    """The content hash of a file, :data:`ABSENT` when there is none."""
    try:
        return content_hash(path.read_bytes())
    except FileNotFoundError:
        return ABSENT


@dataclass(frozen=True)
class Opened:
    """A config file as the editor opened it: its name, text and content hash."""

    file_name: str
    text: str
    hash: str = ABSENT

    def expected_hash(self, file_name: str) -> str:
        """The hash a save to ``file_name`` expects on disk.

        The opened file must be unchanged; any other file (a new experiment, or
        an experiment saved under a new id) must not exist yet.
        """
        return self.hash if file_name == self.file_name else ABSENT


def open_config(path: Path | None, template: str = "") -> Opened:
    """Open a config file for editing (``template`` for a new or missing file)."""
    if path is None:
        return Opened("", template)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Opened(path.name, template)
    return Opened(path.name, _decode(path, raw), content_hash(raw))


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (save the file as UTF-8)") from None


def config_diff(old: str, new: str, file_name: str = "config.yaml") -> str:
    """A unified diff of a config file before and after an edit ('' if equal)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{file_name}",
            tofile=f"b/{file_name}",
        )
    )


def other_change(opened: Opened, path: Path) -> str:
    """What changed on disk since the editor opened the file, as a unified diff."""
    before = opened.text if path.name == opened.file_name else ""
    return config_diff(before, open_config(path).text, path.name)


# --- round trip: a form's edits applied to the original text ---------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)  # the bundled configs' style
    yaml.width = 4096  # never re-wrap a line the analyst wrote
    yaml.preserve_quotes = True
    return yaml


def _last_leaf(parent: Any, key: Any) -> tuple[Any, Any]:
    """The container and key holding the comment that follows ``parent[key]``.

    ruamel keeps the comment lines after a block collection on its last item.
    """
    value = parent[key]
    while isinstance(value, CommentedMap | CommentedSeq) and value:
        if value.fa.flow_style():
            break
        parent = value
        key = next(reversed(value)) if isinstance(value, dict) else len(value) - 1
        value = parent[key]
    return parent, key


def _slot(container: Any) -> int:
    return 2 if isinstance(container, CommentedMap) else 0


def _take_gap(parent: Any, key: Any) -> str:
    """Remove and return the lines after ``parent[key]``'s line (blank, comments).

    They belong to what follows the key, not to the key: when the key is
    deleted or another key is inserted after it, they move on.
    """
    holder, leaf = _last_leaf(parent, key)
    items = holder.ca.items.get(leaf)
    token = items[_slot(holder)] if items else None
    if token is None:
        return ""
    inline, newline, gap = token.value.partition("\n")
    token.value = inline + newline
    return gap


def _put_gap(parent: Any, key: Any, gap: str) -> None:
    """Put lines taken by :func:`_take_gap` after ``parent[key]``."""
    if not gap:
        return
    holder, leaf = _last_leaf(parent, key)
    items = holder.ca.items.setdefault(leaf, [None, None, None, None])
    token = items[_slot(holder)]
    if token is None:
        items[_slot(holder)] = CommentToken("\n" + gap, CommentMark(0))
    else:
        token.value = token.value.rstrip("\n") + "\n" + gap


def _styled(new: Any, old: Any) -> Any:
    """Plain data as ruamel data, in the flow or block style of the old value."""
    if isinstance(new, Mapping):
        out: Any = CommentedMap((k, _styled(v, _get(old, k))) for k, v in new.items())
    elif isinstance(new, list | tuple):
        first = old[0] if isinstance(old, list) and old else None
        out = CommentedSeq(_styled(v, first) for v in new)
    else:
        return new
    if isinstance(old, CommentedMap | CommentedSeq) and old.fa.flow_style():
        out.fa.set_flow_style()
    return out


def _get(data: Any, key: Any) -> Any:
    return data.get(key) if isinstance(data, Mapping) else None


def _apply(
    doc: CommentedMap, before: Mapping[str, Any], after: Mapping[str, Any]
) -> None:
    """Apply the keys that differ between ``before`` and ``after`` to ``doc``."""
    keys = list(doc)
    for key in [k for k in keys if k in before and k not in after]:
        gap = _take_gap(doc, key)
        previous = keys[keys.index(key) - 1] if keys.index(key) else None
        del doc[key]
        keys.remove(key)
        if previous is not None:
            _put_gap(doc, previous, gap)
    for key, value in after.items():
        if key in doc and before.get(key) == value:
            continue
        old = before.get(key)
        nested = (doc.get(key), old, value)
        if all(isinstance(v, Mapping) for v in nested):  # edit inside, keep comments
            _apply(doc[key], old, value)
            continue
        if key in doc:
            gap = _take_gap(doc, key)
            doc[key] = _styled(value, doc[key])
            _put_gap(doc, key, gap)
            continue
        earlier = [k for k in list(after)[: list(after).index(key)] if k in doc]
        position = list(doc).index(earlier[-1]) + 1 if earlier else 0
        gap = _take_gap(doc, earlier[-1]) if earlier else ""
        doc.insert(position, key, _styled(value, None))
        _put_gap(doc, key, gap)


def apply_changes(
    original: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    file_name: str,
    at: Sequence[str] = (),
) -> str:
    """The original text with a form's edits applied, comments and order kept.

    Only keys whose value differs between ``before`` (the form as it was
    opened) and ``after`` (the form as submitted) are touched: a changed value
    is replaced in place, a key the form no longer sets is removed, a new key is
    inserted after its predecessor in ``after``'s order. Keys the form does not
    know, comments and untouched values stay as written.

    Args:
        original: the config's text.
        before: the mapping the form was filled from.
        after: the mapping the submitted form gives.
        file_name: the file's name, for error messages.
        at: the keys leading to the edited mapping (``(metric_id,)`` in the
            catalog; ``()`` for a whole experiment).

    Returns:
        The edited text; ``original`` itself when nothing changed.

    Raises:
        ConfigError: the original is YAML the config loader refuses.
    """
    if dict(before) == dict(after):
        return original
    parse_yaml(original, file_name)  # the one loader refuses aliases, tags, ...
    doc = _yaml().load(original)
    target = doc
    for key in at:
        target = target[key]
    _apply(target, before, after)
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


# --- saving: no lost update, atomic, audited --------------------------------------


@dataclass(frozen=True)
class Editor:
    """Who saves: the signed-in user's e-mail (or "local user") and their role."""

    user: str
    role: Role | None


@dataclass(frozen=True)
class AuditEntry:
    """One save in the audit trail."""

    time: str  # ISO 8601, UTC
    user: str
    file: str
    hash: str  # the content hash of the file after the save
    diff: str


class ChangedOnDiskError(InputError):
    """The file changed on disk since the editor opened it (a save would lose it)."""


def audit_file(folder: Path, setting: str | None = None) -> Path:
    """The audit trail: ``setting`` (``CXLAB_AUDIT_FILE``), else beside the configs."""
    return Path(setting) if setting else Path(folder) / AUDIT_FILE


def read_audit(audit: Path, file_name: str | None = None) -> list[AuditEntry]:
    """The audit trail's entries, latest first (one file's, when named).

    A line that is not an entry (a write cut short by a crash) is skipped.
    """
    try:
        lines = audit.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in reversed(lines):
        try:
            entry = AuditEntry(**json.loads(line))
        except (ValueError, TypeError):
            continue
        if file_name is None or entry.file == file_name:
            entries.append(entry)
    return entries


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _last_change(path: Path, audit: Path, current: str) -> tuple[str, str]:
    """Who made the file what it is now, and when: the audit trail, else its mtime."""
    for entry in read_audit(audit, path.name):
        if entry.hash == current:
            return entry.user, _utc(dt.datetime.fromisoformat(entry.time))
    if current == ABSENT:
        return OUTSIDE, "an unknown time (the file is gone)"
    return OUTSIDE, _utc(dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC))


@contextmanager
def _locked(audit: Path) -> Iterator[IO[str]]:
    """The audit trail opened for appending, under an exclusive lock."""
    audit.parent.mkdir(parents=True, exist_ok=True)
    with audit.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # per open file: threads exclude too
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _replace_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_config(
    path: Path,
    text: str,
    *,
    expected: str,
    editor: Editor,
    audit: Path,
    now: dt.datetime | None = None,
) -> AuditEntry | None:
    """Save a validated config text unless the file changed since it was opened.

    Args:
        path: the config file (checked to lie in the experiments folder).
        text: the new text (validated by the caller through the config loader).
        expected: the content hash the editor opened (:data:`ABSENT` for a file
            that did not exist).
        editor: who saves; their role must allow ``save_config``.
        audit: the JSONL audit trail.
        now: the save's time (the clock by default).

    Returns:
        The audit entry written, or None when the text equals the file (nothing
        is written, the file stays byte-identical).

    Raises:
        AccessDeniedError: the editor's role may not save configs.
        ChangedOnDiskError: the file on disk is no longer the one opened.
    """
    require(editor.role, "save_config")
    with _locked(audit) as trail:
        current = file_hash(path)
        if current != expected:
            who, when = _last_change(path, audit, current)
            raise ChangedOnDiskError(
                f"{path} changed since you opened it (by {who} at {when}); "
                "reload to see the other change"
            )
        old = _decode(path, path.read_bytes()) if current != ABSENT else ""
        if current != ABSENT and old == text:
            return None
        _replace_atomically(path, text)
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        entry = AuditEntry(
            time=moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
            user=editor.user,
            file=path.name,
            hash=content_hash(text.encode("utf-8")),
            diff=config_diff(old, text, path.name),
        )
        trail.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
        trail.flush()
        os.fsync(trail.fileno())
    return entry
