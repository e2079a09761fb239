"""Imported by the scored-file pool's forkserver only (adapters/parallel.py preloads it there).

- Pool processes need not run the program's main module when the transform does not come from
  it (adapters/parallel.py sets MAIN_SKIPPED_ENV then): multiprocessing skips that when the
  forked process's `__main__` already is the program's, which it judges by `__spec__.name`
  (`python -m`) or `__file__` (a script). Both are set here, on the forkserver's own `__main__`.
- Otherwise the forkserver imports the main module by name ahead, and multiprocessing still
  re-runs it in each pool process (as `__mp_main__`, cheap now): runpy warns there that the
  module is in sys.modules already, true and harmless, one stray RuntimeWarning a pool process
  in the worker's logs. The filter below, inherited by the forked processes, drops that one.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import warnings

warnings.filterwarnings(
    "ignore",
    message=r".*found in sys\.modules after import of package.*prior to execution",
    category=RuntimeWarning,
)

_skipped = os.environ.get("CAMPAIGN_WORKERS_POOL_MAIN_SKIPPED", "")
_main = sys.modules.get("__main__")
if _main is not None and _skipped.startswith("name:"):
    _main.__spec__ = importlib.machinery.ModuleSpec(_skipped.removeprefix("name:"), None)
elif _main is not None and _skipped.startswith("path:"):
    _main.__file__ = _skipped.removeprefix("path:")
