"""The app's engine setting: engines checked, Spark URLs read as Spark reads them."""

from __future__ import annotations

import pytest

from cxlab.engine_choice import (
    EngineChoice,
    choose_engine,
    default_spark_url,
    spark_target,
)
from cxlab.errors import InputError
from cxlab.sql.target import SparkTarget


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("local", SparkTarget(master="local")),
        ("local[*]", SparkTarget(master="local[*]")),
        ("local[2,3]", SparkTarget(master="local[2,3]")),
        ("local-cluster[2,1,1024]", SparkTarget(master="local-cluster[2,1,1024]")),
        ("spark://m1:7077,m2:7077", SparkTarget(master="spark://m1:7077,m2:7077")),
        ("yarn", SparkTarget(master="yarn")),
        (
            "k8s://https://k8s.example.com:443",
            SparkTarget("k8s://https://k8s.example.com:443"),
        ),
        (
            " sc://spark.example.com:15002 ",
            SparkTarget(remote="sc://spark.example.com:15002"),
        ),
        (
            "sc://localhost/;token=abc;use_ssl=true",
            SparkTarget(remote="sc://localhost/;token=abc;use_ssl=true"),
        ),
    ],
)
def test_master_and_connect_urls_become_their_targets(
    url: str, target: SparkTarget
) -> None:
    assert spark_target(url) == target


@pytest.mark.parametrize(
    "url", ["http://spark:7077", "spark://", "local[0]", "sc://h:port", "yarn\x1b[31m"]
)
def test_a_url_that_is_not_spark_s_is_named_with_the_forms_spark_reads(
    url: str,
) -> None:
    with pytest.raises(InputError) as info:
        spark_target(url)
    shown = url.replace("\x1b", "\\x1b")  # control characters escaped
    assert str(info.value) == (
        f"Spark URL '{shown}': not a Spark master URL (local[*], spark://HOST:PORT, "
        "yarn, k8s://HOST:PORT) nor a Spark Connect URL (sc://HOST:PORT)"
    )


def test_an_empty_url_is_the_environment_s_else_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CXLAB_SPARK_MASTER", raising=False)
    monkeypatch.delenv("CXLAB_SPARK_REMOTE", raising=False)
    assert spark_target("") == SparkTarget()
    assert default_spark_url() == "local[*]"
    monkeypatch.setenv("CXLAB_SPARK_REMOTE", "sc://spark.example.com:15002")
    assert spark_target("") == SparkTarget(remote="sc://spark.example.com:15002")
    assert default_spark_url() == "sc://spark.example.com:15002"


def test_choose_engine_keeps_the_url_for_spark_only_and_refuses_unknown_engines() -> (
    None
):
    assert choose_engine("duckdb", "not a url") == EngineChoice("duckdb")
    assert choose_engine("spark", " yarn ") == EngineChoice("spark", "yarn")
    with pytest.raises(InputError, match="unknown engine 'pandas'"):
        choose_engine("pandas", "")
    with pytest.raises(InputError, match="Spark URL 'nope'"):
        choose_engine("spark", "nope")


def test_the_engine_in_use_is_described_as_it_resolves() -> None:
    assert EngineChoice().describe("data/events.parquet") == "polars (auto)"
    assert EngineChoice().describe("table:db.events") == (
        f"spark (auto) at {default_spark_url()}"
    )
    assert EngineChoice("duckdb").describe("data/events.parquet") == "duckdb"
    assert EngineChoice("spark", "yarn").describe("x.csv") == "spark at yarn"
