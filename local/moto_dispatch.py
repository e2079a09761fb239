"""moto's server finds each request's backend without listing its own package on disk.

moto 5.2's DomainDispatcherApplication.get_backend_for_host asks `host in
list_of_moto_modules()`, a generator that lists moto's package directory and stats each of its
~170 entries, on every request (twice): ~4 ms of a PutRecords call's CPU, 8 µs a record of a
500-entry batch, for a list that cannot change while the server runs. The replacement answers
the same from the list taken once. Fingerprinted like every moto patch (local/moto_patch.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from local.moto_patch import MotoPatch


@functools.cache
def moto_modules() -> frozenset[str]:
    from moto import backends

    return frozenset(backends.list_of_moto_modules())


def get_backend_for_host(self: Any, host: str | None) -> Any:
    """moto's get_backend_for_host, with the package listing taken once."""
    if host is None:
        return None

    if host == "moto_api":
        return host

    if host in moto_modules():
        return host

    for backend, pattern in self.backend_url_patterns:
        if pattern.match(f"http://{host}"):
            return backend

    if "amazonaws.com" in host:
        print(f"Unable to find appropriate backend for {host}.")  # moto's message
    return None


PATCHES: dict[str, Callable[..., Any]] = {
    "DomainDispatcherApplication.get_backend_for_host": get_backend_for_host
}

# "Class.method" -> fingerprint() of the method replaced, in moto 5.2.5.
ORIGINAL_FINGERPRINTS: dict[str, str] = {
    "DomainDispatcherApplication.get_backend_for_host": "1f41972c1e4e660fbf4e4ddfeeed2fdf",
}


def _classes() -> dict[str, type]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    return {"DomainDispatcherApplication": DomainDispatcherApplication}


DISPATCH_FIX = MotoPatch(
    "moto dispatch",
    __name__,
    _classes,
    replacements=PATCHES,
    fingerprints=ORIGINAL_FINGERPRINTS,
)
