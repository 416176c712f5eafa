"""The read floor: the needed columns read with pyarrow plus a trivial reduction.

    python bench/impl_floor.py --events bench/data/1000000/events.parquet

Reads the six columns any implementation of the daily reduction must read
(timestamp, user_id, event, experiment_id, variant, value) — Parquet with
``pyarrow.parquet.read_table(columns=...)``, CSV with ``pyarrow.csv.read_csv``
(``include_columns``) — and counts rows per event. No implementation that reads
the same columns can finish sooner on this machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ["timestamp", "user_id", "event", "experiment_id", "variant", "value"]


def read(path: Path) -> pa.Table:
    if path.suffix.lower() == ".csv":
        from pyarrow import csv

        return csv.read_csv(
            path, convert_options=csv.ConvertOptions(include_columns=COLUMNS)
        )
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--experiments", type=Path)  # accepted for a uniform CLI
    parser.add_argument("--out", type=Path)  # idem: the floor has no daily table
    args = parser.parse_args()
    start = time.perf_counter()
    table = read(args.events)
    counts = pc.value_counts(table["event"]).to_pylist()
    total = sum(c["counts"] for c in counts)
    print(f"floor: {table.num_rows} rows, {total} counted, {len(counts)} event types "
          f"in {time.perf_counter() - start:.2f}s")  # fmt: skip


if __name__ == "__main__":
    main()
