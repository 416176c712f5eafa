"""Where the spark engine runs: a Spark Connect URL, a master URL, or local.

Kept apart from :mod:`cxlab.sql.spark_engine` so that naming a target (the CLI's
flags, the app's engine setting) imports neither SQLGlot nor PySpark.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

from cxlab.errors import InputError

MASTER_ENV = "CXLAB_SPARK_MASTER"
REMOTE_ENV = "CXLAB_SPARK_REMOTE"
LOCAL_MASTER = "local[*]"

# Default ports: Spark Connect's server and a standalone master's
# (spark.apache.org/docs/latest/spark-connect-overview.html, spark-standalone.html).
CONNECT_PORT = 15002
MASTER_PORT = 7077


@dataclass(frozen=True, slots=True)
class SparkTarget:
    """Where the spark engine runs: a Spark Connect URL, a master URL, or local."""

    master: str | None = None
    remote: str | None = None

    @classmethod
    def of(cls, master: str | None = None, remote: str | None = None) -> SparkTarget:
        """The target from the flags, else from the environment (``CXLAB_SPARK_*``).

        Raises:
            InputError: both a master and a Spark Connect URL.
        """
        if not (master or remote):
            master = os.environ.get(MASTER_ENV) or None
            remote = os.environ.get(REMOTE_ENV) or None
        target = cls(master or None, remote or None)
        if target.master and target.remote:
            raise InputError(
                f"give a Spark master (--spark-master, {MASTER_ENV}) or a Spark "
                f"Connect URL (--spark-remote, {REMOTE_ENV}), not both"
            )
        return target

    @property
    def label(self) -> str:
        """The URL the session runs at (a Connect URL without its parameters)."""
        if self.remote:
            return _without_params(self.remote)
        return self.master or LOCAL_MASTER

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """The hosts and ports a remote target must answer at (none for local).

        A Spark Connect URL is ``sc://HOST[:PORT][/;param=value…]``; a standalone
        master ``spark://HOST[:PORT][,HOST[:PORT]…]`` (several: standby masters).
        Other masters (``yarn``, ``k8s://…``) are reached by Spark's own clients.

        Raises:
            InputError: a port that is not a number.
        """
        if self.remote:
            hosts = [_without_params(self.remote).removeprefix("sc://")]
            default = CONNECT_PORT
        elif self.master and self.master.startswith("spark://"):
            hosts = self.master.removeprefix("spark://").split(",")
            default = MASTER_PORT
        else:
            return []
        endpoints = []
        for text in hosts:
            parsed = urlparse("//" + text)
            try:
                port = parsed.port or default
            except ValueError:
                raise InputError(
                    f"Spark URL {self.label}: not HOST:PORT with a port number"
                ) from None
            endpoints.append((parsed.hostname or "", port))
        return endpoints


def _without_params(url: str) -> str:
    """A Spark URL's scheme and host only: no path, parameters or user info.

    Spark Connect URLs carry tokens as parameters (``sc://h:15002/;token=…``),
    which stay out of messages.
    """
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.split("/", 1)[0].split(";", 1)[0].rpartition("@")[2]
