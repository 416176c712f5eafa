"""The one YAML loader of every config (CONTRACT §2 end: YAML rules).

``cxlab.config.parse_yaml`` refuses what a config never needs (aliases, anchors,
tags, collections as keys, keys given twice, deep nesting, impossible dates,
non-finite numbers) with ``file:line``, before building anything.
"""

from __future__ import annotations

import itertools
import time
import tracemalloc

import pytest

from cxlab.config import MAX_DEPTH, load_catalog, load_experiment, parse_yaml
from cxlab.errors import ConfigError, printable

# Nine levels of nine aliases each: 9**9 (387 million) strings once expanded.
BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n"
        for a, b in itertools.pairwise("abcdefghi")
    )
)


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        parse_yaml(text, "exp.yaml")
    return excinfo.value


def test_alias_bomb_is_refused_at_once_in_little_memory() -> None:
    assert len(BILLION_LAUGHS.encode()) < 1024
    tracemalloc.start()
    started = time.perf_counter()
    error = refused(BILLION_LAUGHS)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert str(error) == "exp.yaml:1: anchor '&a' is not allowed"
    assert elapsed < 0.05
    assert peak < 1_000_000  # bytes


def test_alias_without_anchor_is_refused_with_its_line() -> None:
    assert (
        str(refused("id: exp\nname: *a\n")) == "exp.yaml:2: alias '*a' is not allowed"
    )


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("x: !!python/object:os.system [ls]\n", "python/object:os.system"),
        ("x: !!str 5\n", "tag:yaml.org,2002:str"),
        ("x: !custom 5\n", "!custom"),
        ("x: !!set {a, b}\n", "tag:yaml.org,2002:set"),
    ],
)
def test_every_explicit_tag_is_refused(text: str, tag: str) -> None:
    error = refused(text)
    assert error.line == 1
    assert tag in error.detail
    assert "is not allowed" in error.detail


def test_key_given_twice_names_both_lines() -> None:
    text = "id: exp\nstart: 2026-10-01\nend: 2026-10-05\nalpha: 0.05\nend: 2026-10-09\n"
    assert str(refused(text)) == "exp.yaml:5: key 'end' given twice (first on line 3)"


def test_key_given_twice_in_a_nested_mapping_is_refused() -> None:
    assert refused("prior:\n  sd: 1\n  sd: 2\n").line == 3


@pytest.mark.parametrize("text", ["? [a, b]\n: 1\n", "{a: 1}: 2\n", "[a]: 1\n"])
def test_collection_as_key_is_refused(text: str) -> None:
    assert "a key must be a name" in refused(text).detail


def test_merge_key_is_refused() -> None:
    assert "merge key '<<'" in refused("x:\n  <<: {a: 1}\n").detail


def test_nesting_deeper_than_the_limit_is_refused_without_recursion() -> None:
    deep = "x: " + "[" * 100_000 + "]" * 100_000 + "\n"
    assert str(refused(deep)) == f"exp.yaml:1: nested deeper than {MAX_DEPTH} levels"


def test_nesting_at_the_limit_parses() -> None:
    depth = MAX_DEPTH - 1  # plus the top-level mapping
    data = parse_yaml("x: " + "[" * depth + "1" + "]" * depth + "\n", "exp.yaml")
    data = data["x"]
    for _ in range(depth):
        data = data[0]
    assert data == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("start: 2026-02-30\n", "start: 2026-02-30 is not a date"),
        ("end: 2026-13-01\n", "end: 2026-13-01 is not a date"),
        ("alpha: .nan\n", "alpha: .nan is not a finite number"),
        ("alpha: -.inf\n", "alpha: -.inf is not a finite number"),
        ("planned_users: 1.0e+400\n", "planned_users: 1.0e+400 is not a finite number"),
        ("planned_users: 9223372036854775808\n", "is out of range"),
        ("planned_users: " + "9" * 5000 + "\n", "is out of range"),
    ],
)
def test_impossible_scalars_are_refused_with_the_key(text: str, message: str) -> None:
    error = refused(text)
    assert error.line == 1
    assert message in error.detail


def test_a_plain_equals_sign_is_text() -> None:
    assert parse_yaml("note: =\n", "exp.yaml") == {"note": "="}


def test_control_character_in_the_text_is_refused_with_its_line() -> None:
    assert str(refused("id: exp\nname: a\x07b\n")) == (
        "exp.yaml:2: invalid YAML: character #x0007 is not allowed"
    )


def test_escaped_control_characters_are_never_echoed(lab) -> None:
    path = lab.experiments_dir / "exp.yaml"
    path.write_text('id: "a\\e[31mred"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(path, load_catalog(lab.catalog_path))
    assert "\x1b" not in str(excinfo.value)
    assert "a\\x1b[31mred" in str(excinfo.value)


def test_printable_escapes_control_characters_and_keeps_what_it_is_told() -> None:
    assert printable("a\x1b[0m\tb\nc\u2028") == "a\\x1b[0m\\tb\\nc\\u2028"
    assert printable("a\nb\x00", keep="\n") == "a\nb\\x00"
    assert printable("Café 50 %") == "Café 50 %"


def test_latin1_file_is_refused_with_file_line_and_byte(lab) -> None:
    path = lab.experiments_dir / "exp.yaml"
    path.write_bytes(b"id: exp\nname: Caf\xe9\n")
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(path, load_catalog(lab.catalog_path))
    assert str(excinfo.value) == (
        f"{path}:2: not UTF-8 text: byte 0xe9 at byte 17 (save the file as UTF-8)"
    )


def test_utf8_byte_order_mark_is_fine(lab) -> None:
    path = lab.experiments_dir / "exp.yaml"
    path.write_bytes(
        "\ufeffid: exp\nname: Café\nstart: 2026-10-01\n"
        "variants: [control, treatment]\nprimary_metric: conversion\n".encode()
    )
    exp = load_experiment(path, load_catalog(lab.catalog_path))
    assert (exp.id, exp.name) == ("exp", "Café")
