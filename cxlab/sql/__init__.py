"""The reduction as SQL: generated once from the configs, rendered per dialect.

* :mod:`.reduction` builds the SQLGlot tree (the attribution rules of CONTRACT §1
  and the metric registry) and renders it for DuckDB, Spark, BigQuery, Snowflake
  or Postgres;
* :mod:`.values` holds each metric type's user values as SQL;
* :mod:`.tables` turns the SQL's table of daily changes into ``Summaries``;
* :mod:`.checks` counts the contract's rules in portable SQL (both engines);
* :mod:`.duckdb_engine` runs it on the log's files in an embedded DuckDB;
* :mod:`.spark_engine` runs it in Apache Spark (local, a cluster or Spark
  Connect) on files, object-store URIs or catalog tables;
* :mod:`.engines` picks the engine for ``--engine``.
"""
