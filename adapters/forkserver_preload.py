"""Imported by the scored-file pool's forkserver only (adapters/parallel.py preloads it there).

The forkserver also imports the program's main module by name, so that its pool processes are
forked with its imports loaded. multiprocessing then still re-runs the main module in each pool
process (as `__mp_main__`, now cheap) and runpy warns there that the module is in sys.modules
already: true and harmless here, and one stray RuntimeWarning a pool process in the worker's
logs. This filter, inherited by the forked pool processes, drops that one warning.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings(
    "ignore",
    message=r".*found in sys\.modules after import of package.*prior to execution",
    category=RuntimeWarning,
)
