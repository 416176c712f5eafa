"""Editing configs like a real tool: round trip, no lost update, atomic, audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

from cxlab import editing, studio
from cxlab.access import AccessDeniedError
from cxlab.config import load_catalog, load_experiments
from cxlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "experiments" / "metrics.yaml")
EXPERIMENTS = load_experiments(ROOT / "experiments", CATALOG)
ANA = editing.Editor("ana@example.com", "analyst")
BOB = editing.Editor("bob@example.com", "analyst")
NOON = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)
COMMENTED = """\
# Why this test exists.
id: x  # the id
name: n   # a name

# about the start
start: 2026-01-01
end: 2026-02-01
tags: [a, b]
# trailing
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the bundled experiments folder."""
    target = tmp_path / "experiments"
    shutil.copytree(ROOT / "experiments", target)
    return target


def write(
    folder: Path,
    path: Path,
    text: str,
    opened: editing.Opened,
    who: editing.Editor = ANA,
) -> editing.AuditEntry | None:
    return editing.write_config(
        path,
        text,
        expected=opened.expected_hash(path.name),
        editor=who,
        audit=folder / editing.AUDIT_FILE,
        now=NOON,
    )


# --- round trip ----------------------------------------------------------------


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda e: e.id)
def test_an_unchanged_form_leaves_the_file_byte_identical(exp: object) -> None:
    text = Path(exp.source).read_text()  # type: ignore[attr-defined]
    form = studio.form_from_experiment(exp)  # type: ignore[arg-type]
    assert studio.edit_experiment_text(text, form, form, "x.yaml") == text


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda e: e.id)
def test_a_form_edit_keeps_every_comment_and_changes_one_line(
    exp: object, folder: Path
) -> None:
    path = Path(exp.source)  # type: ignore[attr-defined]
    text = path.read_text()
    form = studio.form_from_experiment(exp)  # type: ignore[arg-type]
    edited = dataclasses.replace(form, owner="new-owner")
    new = studio.edit_experiment_text(text, form, edited, path.name)
    diff = editing.config_diff(text, new)
    assert [line for line in diff.splitlines() if line[:1] in "+-"][2:] == [
        f"-owner: {form.owner}",
        "+owner: new-owner",
    ]
    comments = [line for line in text.splitlines() if "#" in line]
    assert comments == [line for line in new.splitlines() if "#" in line]
    checked = studio.validate_experiment_text(new, folder, CATALOG, path.name)
    assert not isinstance(checked, ConfigError), checked


def test_a_removed_key_hands_the_comment_below_it_to_the_key_above() -> None:
    new = editing.apply_changes(
        COMMENTED, {"id": "x", "end": "e"}, {"id": "x"}, file_name="x.yaml"
    )
    assert new == COMMENTED.replace("end: 2026-02-01\n", "")


def test_a_new_key_goes_after_its_predecessor_before_the_next_comment() -> None:
    before = {"id": "x", "name": "n"}
    after = {"id": "x", "name": "n", "owner": "o"}
    new = editing.apply_changes(COMMENTED, before, after, file_name="x.yaml")
    assert new == COMMENTED.replace("# a name\n", "# a name\nowner: o\n")


def test_a_changed_list_keeps_its_flow_style_and_inline_comments() -> None:
    before, after = {"tags": ["a", "b"]}, {"tags": ["a", "c"]}
    new = editing.apply_changes(COMMENTED, before, after, file_name="x.yaml")
    assert new == COMMENTED.replace("tags: [a, b]", "tags: [a, c]")


def test_round_trip_refuses_what_the_config_loader_refuses() -> None:
    with pytest.raises(ConfigError, match="anchor '&a'"):
        editing.apply_changes("a: &a 1\nb: 2\n", {"b": 2}, {"b": 3}, file_name="x")


# --- saving --------------------------------------------------------------------


def test_a_save_is_refused_when_the_file_changed_since_it_was_opened(
    folder: Path,
) -> None:
    path = folder / "checkout-aa-test.yaml"
    mine = editing.open_config(path)
    theirs = editing.open_config(path)
    write(folder, path, theirs.text + "# bob's\n", theirs, BOB)
    with pytest.raises(editing.ChangedOnDiskError) as refused:
        write(folder, path, mine.text + "# ana's\n", mine)
    assert str(refused.value) == (
        f"{path} changed since you opened it (by bob@example.com at "
        "2026-10-01 12:00:00 UTC); reload to see the other change"
    )
    assert path.read_text().endswith("# bob's\n")
    assert editing.other_change(mine, path).endswith("+# bob's\n")


def test_a_change_outside_cx_lab_is_named_with_the_file_time(folder: Path) -> None:
    path = folder / "checkout-aa-test.yaml"
    mine = editing.open_config(path)
    path.write_text(mine.text + "# by hand\n")
    os.utime(path, (NOON.timestamp(), NOON.timestamp()))
    with pytest.raises(editing.ChangedOnDiskError, match=r"by an edit outside CX Lab"):
        write(folder, path, mine.text + "# ana's\n", mine)


def test_a_new_file_is_refused_when_someone_created_it_meanwhile(
    folder: Path,
) -> None:
    path = folder / "fresh.yaml"
    mine, theirs = editing.open_config(None, "id: fresh\n"), editing.open_config(None)
    write(folder, path, "id: fresh\n", theirs, BOB)
    with pytest.raises(editing.ChangedOnDiskError, match=r"by bob@example\.com"):
        write(folder, path, "id: fresh\nname: mine\n", mine)


def test_saving_the_unchanged_text_writes_nothing(folder: Path) -> None:
    path = folder / "checkout-aa-test.yaml"
    stamp = path.stat().st_ino, path.stat().st_mtime_ns
    opened = editing.open_config(path)
    assert write(folder, path, opened.text, opened) is None
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp
    assert editing.read_audit(folder / editing.AUDIT_FILE) == []


def test_atomic_write_leaves_no_temp_files(folder: Path) -> None:
    path = folder / "checkout-aa-test.yaml"
    before = {p.name for p in folder.iterdir()}
    opened = editing.open_config(path)
    write(folder, path, opened.text + "# edited\n", opened)
    assert {p.name for p in folder.iterdir()} == before | {editing.AUDIT_FILE}


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = folder / "checkout-aa-test.yaml"
    opened = editing.open_config(path)
    before = {p.name for p in folder.iterdir()}

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write(folder, path, "id: x\n", opened)
    assert path.read_text() == opened.text
    assert {p.name for p in folder.iterdir()} <= before | {editing.AUDIT_FILE}
    assert editing.read_audit(folder / editing.AUDIT_FILE) == []


def test_a_viewer_may_not_write(folder: Path) -> None:
    path = folder / "checkout-aa-test.yaml"
    opened = editing.open_config(path)
    viewer = editing.Editor("vic@example.com", "viewer")
    with pytest.raises(AccessDeniedError, match="may not save configs"):
        write(folder, path, opened.text + "# x\n", opened, viewer)
    assert path.read_text() == opened.text


def test_every_save_is_appended_to_the_audit_trail_with_its_diff(
    folder: Path,
) -> None:
    path = folder / "checkout-aa-test.yaml"
    first = editing.open_config(path)
    write(folder, path, first.text + "# one\n", first)
    second = editing.open_config(path)
    write(folder, path, second.text + "# two\n", second, BOB)
    audit = folder / editing.AUDIT_FILE
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["user"], e["time"]) for e in lines] == [
        ("ana@example.com", "2026-10-01T12:00:00Z"),
        ("bob@example.com", "2026-10-01T12:00:00Z"),
    ]
    latest = editing.read_audit(audit)
    assert [e.user for e in latest] == ["bob@example.com", "ana@example.com"]
    assert latest[0].file == "checkout-aa-test.yaml"
    assert latest[0].diff.startswith("--- a/checkout-aa-test.yaml\n")
    assert latest[0].diff.endswith("+# two\n")
    assert latest[0].hash == editing.file_hash(path)


def test_a_torn_audit_line_is_skipped(tmp_path: Path) -> None:
    audit = tmp_path / editing.AUDIT_FILE
    audit.write_text('{"time": "2026-10-01T12:00:00Z", "user"\n')
    assert editing.read_audit(audit) == []


def test_the_audit_trail_sits_beside_the_configs_unless_configured(
    tmp_path: Path,
) -> None:
    assert editing.audit_file(tmp_path) == tmp_path / ".audit.jsonl"
    assert editing.audit_file(tmp_path, "/var/log/cx.jsonl") == Path(
        "/var/log/cx.jsonl"
    )


def test_diff_shows_removed_and_added_lines() -> None:
    diff = editing.config_diff("a: 1\nb: 2\n", "a: 1\nb: 3\n", "x.yaml")
    assert diff.splitlines() == [
        "--- a/x.yaml",
        "+++ b/x.yaml",
        "@@ -1,2 +1,2 @@",
        " a: 1",
        "-b: 2",
        "+b: 3",
    ]
    assert editing.config_diff("same\n", "same\n") == ""
