"""Statistics of CX Lab: pure functions over per-arm sufficient statistics.

No dataframes, no I/O, no UI: every module imports only ``math``, ``numpy``,
``scipy``, ``statsmodels`` and ``stats.*``.
"""

from __future__ import annotations
