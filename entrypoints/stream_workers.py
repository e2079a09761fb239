"""Stream workers by name, for the processes that run them (KCL children, the poller, the CLI).

The composition root (`entrypoints.bootstrap.build_stream_worker`) binds the named workers to
their adapters. A `package.module:factory` spec is also accepted, the factory taking Settings and
returning a StreamWorker: that is how tests hand the real daemon a probe worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from domain.streaming import StreamWorker
from entrypoints.settings import Settings

WorkerFactory = Callable[[Settings], StreamWorker]

# Which stream each named worker consumes.
_STREAM_OF: dict[str, Callable[[Settings], str]] = {
    "save_campaign_data": lambda s: s.input_stream,
    "transform_code_assignments": lambda s: s.input_stream,
    "save_selection": lambda s: s.save_selection_stream,
}

STREAM_WORKERS = tuple(_STREAM_OF)


def _load_factory(spec: str) -> WorkerFactory:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"worker spec {spec!r} must look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as missing:
        raise ValueError(
            f"worker spec {spec!r}: cannot import {module_name!r}: {missing}"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"worker spec {spec!r}: {module_name} has no callable {attribute!r}")
    return cast(WorkerFactory, factory)


def build_stream_worker(name: str, settings: Settings) -> StreamWorker:
    """The named worker bound to the adapters settings describe (or a `module:factory` spec)."""
    if ":" in name:
        return _load_factory(name)(settings)
    if name not in _STREAM_OF:
        raise ValueError(f"unknown stream worker {name!r}; known: {', '.join(STREAM_WORKERS)}")
    from entrypoints import bootstrap

    return bootstrap.build_stream_worker(name, settings)


def stream_for(name: str, settings: Settings) -> str:
    """The stream a worker consumes; a `module:factory` spec consumes the input stream."""
    if ":" in name:
        return settings.input_stream
    try:
        return _STREAM_OF[name](settings)
    except KeyError:
        raise ValueError(
            f"unknown stream worker {name!r}; known: {', '.join(STREAM_WORKERS)}"
        ) from None
