"""The app's engine setting: which reduction engine runs, and where Spark runs.

The app offers what the CLI's ``--engine``, ``--spark-master`` and
``--spark-remote`` offer (CONTRACT §4: the numbers are the same whichever engine
runs). Spark is reached by one URL: a master URL (``local[*]``,
``spark://HOST:PORT``, ``yarn``, ``k8s://HOST:PORT``; Spark's "Master URLs") or a
Spark Connect URL (``sc://HOST:PORT``); empty means the environment's
(``CXLAB_SPARK_REMOTE``, ``CXLAB_SPARK_MASTER``), else a local session.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from cxlab.errors import InputError, printable
from cxlab.sql.engines import resolve_engine
from cxlab.sql.target import LOCAL_MASTER, MASTER_ENV, REMOTE_ENV, SparkTarget

# Spark's master URL forms (spark.apache.org/docs/latest/submitting-applications.html).
_MASTER = re.compile(
    r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?"
    r"|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]"
    r"|yarn"
    r"|spark://[\w.-]+(:\d{1,5})?(,[\w.-]+(:\d{1,5})?)*"
    r"|k8s://(https?://)?[\w.-]+(:\d{1,5})?"
)
# Spark Connect: sc://HOST[:PORT][/;param=value;...] (Spark Connect's client URL).
_REMOTE = re.compile(r"sc://[\w.-]+(:\d{1,5})?(/(;[\w.-]+=[^;\s]*)*)?")


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """An engine (``--engine``'s choices) and, for Spark, its URL ("" = default)."""

    engine: str = "auto"
    spark_url: str = ""

    def describe(self, events: str) -> str:
        """The engine that runs on ``events``: ``polars (auto)``, ``spark at yarn``.

        Raises:
            InputError: an unknown engine.
        """
        engine = resolve_engine(self.engine, events=events)
        text = f"{engine} (auto)" if self.engine == "auto" else engine
        if engine == "spark":
            text += f" at {self.spark_url or default_spark_url()}"
        return text


def default_spark_url() -> str:
    """The environment's Spark URL (Connect first, then master), else local[*]."""
    return os.environ.get(REMOTE_ENV) or os.environ.get(MASTER_ENV) or LOCAL_MASTER


def spark_target(url: str) -> SparkTarget:
    """Where Spark runs for a URL: a master or a Spark Connect server.

    Args:
        url: a master URL, a Spark Connect URL, or "" for the environment's
            (``CXLAB_SPARK_REMOTE``, ``CXLAB_SPARK_MASTER``), else ``local[*]``.

    Raises:
        InputError: the URL is neither kind, or the environment names both.
    """
    url = url.strip()
    if not url:
        return SparkTarget.of()
    if _REMOTE.fullmatch(url):
        return SparkTarget(remote=url)
    if _MASTER.fullmatch(url):
        return SparkTarget(master=url)
    raise InputError(
        f"Spark URL '{printable(url)}': not a Spark master URL (local[*], "
        "spark://HOST:PORT, yarn, k8s://HOST:PORT) nor a Spark Connect URL "
        "(sc://HOST:PORT)"
    )


def choose_engine(engine: str, spark_url: str) -> EngineChoice:
    """The setting for an engine and a Spark URL, both checked.

    The URL is kept only for Spark (the other engines run in this process).

    Raises:
        InputError: an unknown engine or a URL that is not Spark's.
    """
    resolve_engine(engine)  # refuses an engine that is not in ENGINES
    if engine != "spark":
        return EngineChoice(engine)
    spark_target(spark_url)
    return EngineChoice(engine, spark_url.strip())
