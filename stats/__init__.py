"""Statistics of CX Lab: pure functions over per-arm sufficient statistics.

No dataframes, no I/O, no UI: every module imports only ``math``, ``numpy``,
``scipy``, ``statsmodels`` and ``cxlab.stats.*`` (this folder, see cxlab/__init__.py).
"""

from __future__ import annotations
