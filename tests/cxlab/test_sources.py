"""Safe data sources: server paths stay inside the data roots; uploads expire."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cxlab import events
from cxlab.errors import EventLogError, InputError
from cxlab.sources import (
    OutsideRootsError,
    check_upload,
    data_roots,
    resolve_inside,
    safe_upload_name,
    save_upload,
    scrub_paths,
    session_folder,
    shown_path,
    sweep_uploads,
)

LOG = "timestamp,user_id,event\n2026-09-01T10:00:00,u1,order\n"
SESSION = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with ``data/a.csv`` and ``data/logs/b.csv``, and a planted CSV."""
    (tmp_path / "repo" / "data" / "logs").mkdir(parents=True)
    (tmp_path / "repo" / "data" / "a.csv").write_text(LOG)
    (tmp_path / "repo" / "data" / "logs" / "b.csv").write_text(LOG)
    (tmp_path / "planted.csv").write_text("secret\n42\n")
    return (tmp_path / "repo").resolve()


def resolve(repo: Path, spec: str) -> list[str]:
    source = resolve_inside(data_roots(None, repo), spec, base=repo)
    return [f.relative_to(repo).as_posix() for f in source.files]


def test_the_default_root_is_the_repos_data_folder(repo: Path) -> None:
    assert data_roots(None, repo) == (repo / "data",)
    assert data_roots("", repo) == (repo / "data",)
    assert data_roots(f"logs{os.pathsep}/srv/cx", repo) == (
        repo / "logs",
        Path("/srv/cx"),
    )


@pytest.mark.parametrize(
    ("spec", "files"),
    [
        ("data/a.csv", ["data/a.csv"]),
        ("data/logs", ["data/logs/b.csv"]),
        ("data/**/*.csv", ["data/a.csv", "data/logs/b.csv"]),
        ("data/logs/../a.csv", ["data/a.csv"]),
    ],
)
def test_files_folders_and_globs_inside_the_root_are_accepted(
    repo: Path, spec: str, files: list[str]
) -> None:
    assert resolve(repo, spec) == files
    assert resolve(repo, str(repo / spec)) == files  # absolute is the same


@pytest.mark.parametrize(
    "spec",
    [
        "/proc",
        "/proc/self/environ",
        "/etc/passwd",
        "../planted.csv",
        "data/../../planted.csv",
        "data/../*.csv",
        "/",
        ".",
    ],
)
def test_paths_outside_the_root_are_refused_by_name(repo: Path, spec: str) -> None:
    with pytest.raises(OutsideRootsError) as info:
        resolve(repo, spec)
    assert str(info.value) == (
        f"{spec}: not inside the data folders (data/); only files there can be read. "
        "An admin can add folders with CXLAB_DATA_ROOTS."
    )


def test_a_symlink_out_of_the_root_is_refused(repo: Path) -> None:
    planted = repo.parent / "planted.csv"
    (repo / "data" / "link.csv").symlink_to(planted)
    (repo / "data" / "outside").symlink_to(repo.parent, target_is_directory=True)
    for spec in ("data/link.csv", "data/outside/planted.csv", "data/outside", "data"):
        with pytest.raises(OutsideRootsError):
            resolve(repo, spec)
    with pytest.raises(OutsideRootsError):
        resolve(repo, "data/*.csv")  # the glob names the link too


def test_a_planted_csv_in_a_temporary_folder_is_refused(repo: Path) -> None:
    with pytest.raises(OutsideRootsError, match=r"planted\.csv: not inside"):
        resolve(repo, str(repo.parent / "planted.csv"))


def test_an_empty_path_and_a_missing_file_get_clear_messages(repo: Path) -> None:
    with pytest.raises(OutsideRootsError, match="type a file, folder or glob"):
        resolve(repo, "  ")
    with pytest.raises(EventLogError, match="event log not found"):
        resolve(repo, "data/nope.csv")


def test_an_unreadable_folder_inside_the_root_is_a_message_not_a_traceback(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Root reads every folder, so the refusal is simulated where the folder is listed.
    monkeypatch.setattr(events.os, "walk", denied)
    with pytest.raises(OutsideRootsError, match=r"^data/logs: cannot be read$"):
        resolve(repo, "data/logs")


def test_an_extra_root_outside_the_repo_is_allowed_and_shown_by_its_name(
    repo: Path,
) -> None:
    extra = repo.parent / "lake"
    extra.mkdir()
    (extra / "c.csv").write_text(LOG)
    roots = data_roots(f"data{os.pathsep}{extra}", repo)
    source = resolve_inside(roots, str(extra / "c.csv"), base=repo)
    assert source.files == (extra / "c.csv",)
    with pytest.raises(OutsideRootsError, match=r"\(data/, lake/\)"):
        resolve_inside(roots, "/etc/passwd", base=repo)


def test_an_unreadable_upload_is_deleted_and_a_readable_one_kept(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(EventLogError, match="cannot read the log"):
        check_upload(bad)
    assert not bad.exists()
    good = tmp_path / "renamed.csv"  # other column names: the mapping handles them
    good.write_text("ts,customer\n2026-09-01,u1\n")
    assert check_upload(good) == good


def test_each_session_gets_its_own_folder(tmp_path: Path) -> None:
    folder = session_folder(tmp_path / "uploads", SESSION)
    assert folder == tmp_path / "uploads" / SESSION
    assert folder.is_dir()
    with pytest.raises(ValueError, match="bad session id"):
        session_folder(tmp_path / "uploads", "../etc")


def test_sweeping_removes_only_folders_older_than_the_limit(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    old, new, kept = (session_folder(uploads, c * 32) for c in "abc")
    (old / "x.csv").write_text(LOG)
    stray = uploads / ".upload.123.tmp"
    stray.write_text("half")
    two_days_ago = time.time() - 48 * 3600
    for entry in (old, kept, stray):
        os.utime(entry, (two_days_ago, two_days_ago))
    removed = sweep_uploads(uploads, max_age_hours=24, keep="c" * 32)
    assert sorted(removed) == sorted([old, stray])
    assert sorted(uploads.iterdir()) == sorted([new, kept])
    assert sweep_uploads(tmp_path / "missing") == []


def test_shown_paths_and_messages_never_carry_the_servers_folders(
    repo: Path,
) -> None:
    lake = Path("/srv/lake")
    bases = [repo, repo / "data", lake]
    assert shown_path(repo / "data" / "a.csv", bases) == "data/a.csv"
    assert shown_path(repo, bases) == "."
    assert shown_path("/etc/passwd", bases) == "passwd"
    message = f"{repo}/data/a.csv: bad; {lake}/2026/b.csv: worse"
    assert scrub_paths(message, bases) == "data/a.csv: bad; lake/2026/b.csv: worse"


def test_upload_names_are_made_safe_and_keep_the_type() -> None:
    name = safe_upload_name("../../My Events (1).CSV", b"a,b\n")
    assert name.startswith("my-events-1-")
    assert name.endswith(".csv")
    assert "/" not in name
    with pytest.raises(InputError, match="unsupported file type"):
        safe_upload_name("log.exe", b"x")


def test_upload_over_the_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="1 MB upload limit"):
        save_upload(tmp_path, "big.csv", b"x" * (1024 * 1024 + 1), max_mb=1)
    assert not any(tmp_path.iterdir())


def test_upload_is_saved_once_under_the_folder(tmp_path: Path) -> None:
    first = save_upload(tmp_path / "uploads", "log.csv", b"a,b\n1,2\n")
    again = save_upload(tmp_path / "uploads", "log.csv", b"a,b\n1,2\n")
    assert first == again
    assert first.parent == tmp_path / "uploads"
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [first.name]
