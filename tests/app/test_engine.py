"""The engine setting on the Data page: admins choose it, everyone sees it.

Every engine gives the same numbers (CONTRACT §4), so the portfolio and the Data
page's health report drawn after an admin switches to DuckDB must read exactly as
they did with Polars; that the switch really ran DuckDB is read from the summaries
the app stored on disk (one entry per engine: the engine is part of the key).
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from pandas.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

from cxlab.engine_choice import EngineChoice
from cxlab.ui import cache
from tests.app.conftest import AUTH, portfolio_details, scorecard_shown

ROOT = Path(__file__).resolve().parents[2]
DATA = "pages/data.py"
ROLES = """\
users:
  vi@example.com: viewer
  an@example.com: analyst
"""
ADMIN = "users:\n  ad@example.com: admin\n"


def choose(at: AppTest, engine: str, spark_url: str | None = None) -> AppTest:
    at.selectbox(key="data_engine").set_value(engine).run()
    if spark_url is not None:
        at.text_input(key="data_spark_url").input(spark_url)
    return at.button(key="data_use_engine").click().run()


def force(at: AppTest, engine: str) -> AppTest:
    """A crafted request that sets disabled widgets (AppTest's own check is off)."""
    engines = at.selectbox(key="data_engine")
    engines.proto.disabled = False
    engines.set_value(engine).run()
    button = at.button(key="data_use_engine")
    button.proto.disabled = False
    return button.click().run()


def engine_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if "Engine: " in c.value)


def shown_numbers(at: AppTest) -> tuple[dict[str, str], pd.DataFrame]:
    """The portfolio's tiles and its table, as the page shows them."""
    return {m.label: m.value for m in at.metric}, portfolio_details(at)


def results_numbers(at: AppTest) -> tuple[dict[str, str], pd.DataFrame]:
    """The shipping e-mail's results page: its tiles and its scorecard."""
    at.session_state[cache.EXPERIMENT_KEY] = "proactive-shipping-email"
    at.switch_page("pages/results.py").run()
    assert not at.exception
    return {m.label: m.value for m in at.metric}, scorecard_shown(at)


def test_an_admin_switches_to_duckdb_and_the_same_numbers_are_shown(
    timeout: int,
    sample_log: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A copy of the experiments keys every cache afresh: nothing is reused from
    # another test, so each engine's scan is stored once in this test's folder.
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    monkeypatch.setenv("CXLAB_CACHE_DIR", str(tmp_path / "store"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.session_state["experiments_dir"] = str(tmp_path / "experiments")
    at.run()  # the portfolio, in local single-user mode (an admin)
    assert not at.exception
    assert at.sidebar.caption[1].value == "Engine: polars (auto)"
    with_polars = shown_numbers(at)
    assert len(with_polars[1]) == 8
    results_with_polars = results_numbers(at)

    at.switch_page("pages/data.py").run()
    health_with_polars = {m.label: m.value for m in at.metric}
    assert list(health_with_polars)[:2] == ["Rows", "Users"]
    at = choose(at, "duckdb")
    assert not at.exception
    assert at.session_state[cache.ENGINE_KEY] == EngineChoice("duckdb")
    assert engine_caption(at).endswith("· Engine: duckdb")
    assert not at.error
    assert {m.label: m.value for m in at.metric} == health_with_polars

    at.switch_page("pages/portfolio.py").run()
    assert not at.exception
    assert at.sidebar.caption[1].value == "Engine: duckdb"
    tiles, table = shown_numbers(at)
    assert tiles == with_polars[0]
    # The text shown is identical; the sorting keys behind it are equal floats up
    # to the order of summation (DuckDB sums in its own order).
    assert_frame_equal(table, with_polars[1], check_exact=False, rtol=1e-9)
    text = table.select_dtypes(exclude="number")
    assert {"lift", "ci", "verdict", "recommendation"} <= set(text.columns)
    assert text.equals(with_polars[1].select_dtypes(exclude="number"))
    stored = [
        pickle.loads(p.read_bytes())
        for p in (tmp_path / "store").glob("summaries-*.pickle")
    ]
    assert len(stored) == 2  # Polars's scan, then DuckDB's
    ledgers = [next(iter(s.values())).log.ledger for s in stored]
    assert len({(r.rows, r.used, tuple(r.set_aside.items())) for r in ledgers}) == 1
    tiles, card = results_numbers(at)
    assert tiles == results_with_polars[0]
    assert "Contacts per order" in card["metric"].to_list()
    assert_frame_equal(card, results_with_polars[1], check_exact=False, rtol=1e-9)


def as_user(
    email: str, roles: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AppTest:
    (tmp_path / "roles.yaml").write_text(roles)
    monkeypatch.setenv("CXLAB_ROLES_FILE", str(tmp_path / "roles.yaml"))
    at = AppTest.from_file(str(ROOT / DATA), default_timeout=120)
    at.secrets["auth"] = AUTH
    at.user = {"email": email, "is_logged_in": True}
    return at.run()


@pytest.mark.parametrize("email", ["vi@example.com", "an@example.com"])
def test_a_non_admin_sees_the_engine_and_a_forced_change_changes_nothing(
    email: str, sample_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = as_user(email, ROLES, tmp_path, monkeypatch)
    assert not at.exception
    assert engine_caption(at).endswith("· Engine: polars (auto)")
    assert at.selectbox(key="data_engine").disabled
    assert at.button(key="data_use_engine").disabled
    at = force(at, "duckdb")
    assert not at.exception
    assert cache.ENGINE_KEY not in at.session_state
    assert engine_caption(at).endswith("· Engine: polars (auto)")
    assert [m.label for m in at.metric][:2] == ["Rows", "Users"]  # Polars's health


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_an_admin_demoted_while_the_page_is_open_is_refused_on_the_server(
    role: str, sample_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = as_user("ad@example.com", ADMIN, tmp_path, monkeypatch)
    assert not at.selectbox(key="data_engine").disabled
    (tmp_path / "roles.yaml").write_text(ADMIN.replace("admin", role))
    # The page still shows enabled widgets; the change is checked when applied.
    at.selectbox(key="data_engine").set_value("duckdb")
    at = at.button(key="data_use_engine").click().run()
    assert not at.exception
    assert at.error[0].value == (
        f"Not allowed: your role ({role}) may not choose the reduction engine. This "
        "needs the admin role or higher; ask an admin to add you to the roles file."
    )
    assert cache.ENGINE_KEY not in at.session_state
    assert engine_caption(at).endswith("· Engine: polars (auto)")
    assert at.selectbox(key="data_engine").disabled


@pytest.mark.parametrize(
    "url",
    ["http://spark:7077", "spark://", "local[0]", "sc://host:port", "yarn;rm -rf"],
)
def test_a_bad_spark_url_is_named_and_not_used(url: str, sample_log: Path) -> None:
    at = AppTest.from_file(str(ROOT / DATA), default_timeout=120).run()
    at = choose(at, "spark", url)
    assert not at.exception
    assert at.error[0].value == (
        f"Spark URL '{url}': not a Spark master URL (local[*], spark://HOST:PORT, "
        "yarn, k8s://HOST:PORT) nor a Spark Connect URL (sc://HOST:PORT)"
    )
    assert cache.ENGINE_KEY not in at.session_state
    assert engine_caption(at).endswith("· Engine: polars (auto)")


def test_the_spark_url_defaults_to_the_environment(
    sample_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXLAB_SPARK_MASTER", "spark://cluster.example.com:7077")
    at = AppTest.from_file(str(ROOT / DATA), default_timeout=120).run()
    at.selectbox(key="data_engine").set_value("spark").run()
    assert at.text_input(key="data_spark_url").value == (
        "spark://cluster.example.com:7077"
    )


@pytest.mark.spark
def test_an_admin_switches_to_local_spark_and_the_portfolio_is_the_same(
    spark: object, sample_log: Path, tmp_path: Path
) -> None:
    # One experiment on a hundredth of the sample's users keeps local Spark quick.
    folder = tmp_path / "experiments"
    folder.mkdir()
    for name in ("metrics.yaml", "proactive-shipping-email.yaml"):
        shutil.copy(ROOT / "experiments" / name, folder / name)
    log = tmp_path / "hundredth.parquet"
    users = pl.col("user_id").str.ends_with("17")
    pl.scan_parquet(sample_log).filter(users).sink_parquet(log)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.session_state[cache.EVENTS_KEY] = str(log)
    at.session_state["experiments_dir"] = str(folder)
    at.run()
    assert not at.exception
    with_polars = shown_numbers(at)
    assert len(with_polars[1]) == 1

    at.switch_page("pages/data.py").run()
    at = choose(at, "spark", "")  # empty: the environment's, else local[*]
    assert not at.exception
    assert at.session_state[cache.ENGINE_KEY] == EngineChoice("spark")
    at.switch_page("pages/portfolio.py").run()
    assert not at.exception
    assert at.sidebar.caption[1].value.startswith("Engine: spark at ")
    tiles, table = shown_numbers(at)
    assert tiles == with_polars[0]
    assert_frame_equal(table, with_polars[1], check_exact=False, rtol=1e-9)


def preview(folder: Path, events: Path, choice: EngineChoice) -> AppTest:
    """The Configs page's preview of an unsaved copy of the shipping e-mail."""
    at = AppTest.from_file(str(ROOT / "pages" / "configs.py"), default_timeout=120)
    at.session_state["experiments_dir"] = str(folder)
    at.session_state[cache.EVENTS_KEY] = str(events)
    at.session_state[cache.ENGINE_KEY] = choice  # as the Data page's callback sets it
    at.run()
    at.selectbox(key="configs_exp_base").set_value("proactive-shipping-email").run()
    form = "configs_exp_proactive-shipping-email_form-Apply to YAML"
    at.button(key=f"FormSubmitter:{form}").click().run()
    at.button(key="configs_preview").click().run()
    assert not at.exception
    return at


def test_the_configs_preview_runs_on_the_session_s_engine(tmp_path: Path) -> None:
    from cxlab.sample import write_sample

    folder = tmp_path / "experiments"
    shutil.copytree(ROOT / "experiments", folder)
    events = write_sample(tmp_path / "small.parquet", n_users=4000)
    with_polars = preview(folder, events, EngineChoice("polars"))
    with_duckdb = preview(folder, events, EngineChoice("duckdb"))
    assert not with_polars.error
    assert not with_duckdb.error
    table = with_polars.dataframe[-1].value
    assert "Contacts per order" in table["metric"].to_list()
    assert_frame_equal(
        with_duckdb.dataframe[-1].value, table, check_exact=False, rtol=1e-9
    )
    # A Spark URL that the Data page would refuse reaches the preview's engine
    # call, which names it: the preview does not run on a path of its own.
    with_spark = preview(folder, events, EngineChoice("spark", "nope"))
    assert with_spark.error[-1].value.startswith("Spark URL 'nope': not a Spark")
