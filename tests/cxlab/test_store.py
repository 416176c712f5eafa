"""Summaries and results kept on disk between server restarts (cxlab.store)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from cxlab import store
from cxlab.stats import fixed


def test_a_value_round_trips_under_its_key(tmp_path: Path) -> None:
    frame = pl.DataFrame({"variant": ["control", "treatment"], "n": [10, 12]})
    name = store.key("log.parquet", (("log.parquet", 100, 7),), "configs")
    assert store.load(tmp_path, name) is None
    store.save(tmp_path, name, {"exp": frame})
    assert_frame_equal(store.load(tmp_path, name)["exp"], frame)
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.pickle"]  # no temp file


def test_the_key_changes_with_every_part_and_with_the_engine_code() -> None:
    base = store.key("log.parquet", (("log.parquet", 100, 7),), (("a.yaml", "h1"),))
    assert base == store.key(
        "log.parquet", (("log.parquet", 100, 7),), (("a.yaml", "h1"),)
    )
    assert base != store.key(
        "log.parquet", (("log.parquet", 100, 8),), (("a.yaml", "h1"),)
    )
    assert base != store.key(
        "log.parquet", (("log.parquet", 100, 7),), (("a.yaml", "h2"),)
    )
    version = store.engine_version()
    engine_file = Path(store.__file__)
    stat = engine_file.stat()
    try:  # an engine file touched: another engine, another key
        os.utime(engine_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
        store.engine_version.cache_clear()
        assert store.engine_version() != version
        assert (
            store.key("log.parquet", (("log.parquet", 100, 7),), (("a.yaml", "h1"),))
            != base
        )
    finally:
        os.utime(engine_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        store.engine_version.cache_clear()
    assert store.engine_version() == version


def test_the_statistics_code_has_its_own_stamp() -> None:
    version = store.statistics_version()
    stats_file = Path(fixed.__file__)
    stat = stats_file.stat()
    try:  # a statistics file touched: results analysed before are stale
        os.utime(stats_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
        store.statistics_version.cache_clear()
        assert store.statistics_version() != version
    finally:
        os.utime(stats_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        store.statistics_version.cache_clear()
    assert store.statistics_version() == version


def test_a_file_that_does_not_load_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    (tmp_path / "torn.pickle").write_bytes(b"\x80\x05not a pickle")
    assert store.load(tmp_path, "torn") is None
    assert not (tmp_path / "torn.pickle").exists()


def test_only_the_newest_files_are_kept(tmp_path: Path) -> None:
    for i in range(store.KEEP + 3):
        store.save(tmp_path, f"v{i}", i)
        os.utime(tmp_path / f"v{i}.pickle", ns=(i * 10**9, i * 10**9))
    store.save(tmp_path, "last", "x")
    kept = sorted(p.stem for p in tmp_path.glob("*.pickle"))
    assert len(kept) == store.KEEP
    assert "last" in kept
    assert "v0" not in kept


def test_a_value_read_back_outlives_newer_ones(tmp_path: Path) -> None:
    for i in range(store.KEEP):
        store.save(tmp_path, f"v{i}", i)
        os.utime(tmp_path / f"v{i}.pickle", ns=(i * 10**9, i * 10**9))
    assert store.load(tmp_path, "v0") == 0  # the oldest file, used again now
    store.save(tmp_path, "last", "x")
    kept = {p.stem for p in tmp_path.glob("*.pickle")}
    assert "v0" in kept
    assert "v1" not in kept  # the least recently used went instead


def test_a_folder_that_cannot_be_written_costs_only_a_rescan(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store.save(blocker / "cache", "name", 1)  # logged, not raised
    assert store.load(blocker / "cache", "name") is None
