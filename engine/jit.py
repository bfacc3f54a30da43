"""The compilation settings of the engine's Numba functions.

All are cached on disk (``cache=True``: compiled once per machine and source version) and built
without the C-callable wrapper Numba otherwise adds to every function (none is used as a C
callback), which shortens the cold compile. ``inline`` marks small helpers that are merged into
their caller's Numba IR instead of being compiled as functions of their own (fewer, larger
compilations); the hot kernels stay separate functions, where LLVM optimises them best.
``internal`` functions are called from compiled code only (no Python wrapper either).

None of them allocates memory (their arrays come from the caller) or keeps an array beyond its
call, so they are compiled without Numba's reference counting (``_nrt=False``): the time loop
reads its arrays from named tuples, and counting each read in every step made a step at L = 32
about 1.8x slower (``benchmarks/engine.py``). An engine function that had to allocate would not
compile: Numba says so. Every function releases the GIL (``nogil``): runs in threads of one
process (a Dask worker's threads) go on in parallel.

Numba keys a cached function to the source of its own file only, yet the time loop carries the
code of the helpers it calls from other files: ``EngineCacheLocator`` keys every engine function
to all the engine's sources, so that no edit or upgrade ever runs stale compiled code.
"""

import hashlib
import os

from numba import njit
from numba.core import caching

ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))
CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # (named so before Numba 0.65)


def sources_digest() -> str:
    """SHA-256 of the engine's Python sources (every ``*.py`` file of this folder)."""
    digest = hashlib.sha256()
    for name in sorted(f for f in os.listdir(ENGINE_DIR) if f.endswith(".py")):
        with open(os.path.join(ENGINE_DIR, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()


class EngineCacheLocator:
    """Numba's usual cache place for an engine function, with the source stamp extended by the
    digest of all the engine's sources (Numba's own stamp covers the function's file alone)."""

    default_classes = tuple(CACHE_IMPL._locator_classes)
    digest = sources_digest()

    def __init__(self, inner):
        self._inner = inner

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != ENGINE_DIR:
            return None  # not ours: Numba's locators take it
        for locator_class in cls.default_classes:
            inner = locator_class.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None

    def __getattr__(self, name):  # all but the stamp is the usual locator's
        return getattr(self._inner, name)

    def get_source_stamp(self):
        return self._inner.get_source_stamp(), self.digest


if EngineCacheLocator not in CACHE_IMPL._locator_classes:
    CACHE_IMPL._locator_classes.insert(0, EngineCacheLocator)

OPTIONS = {"cache": True, "no_cfunc_wrapper": True, "_nrt": False, "nogil": True}
jit = njit(**OPTIONS)
inline = njit(**OPTIONS, inline="always")
internal = njit(**OPTIONS, no_cpython_wrapper=True)
