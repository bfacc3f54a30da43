"""The compilation settings of the engine's Numba functions.

All are cached on disk (``cache=True``: compiled once per machine and source version) and built
without the C-callable wrapper Numba otherwise adds to every function (none is used as a C
callback), which shortens the cold compile. ``inline`` marks small helpers that are merged into
their caller's Numba IR instead of being compiled as functions of their own (fewer, larger
compilations); the hot kernels stay separate functions, where LLVM optimises them best.
``internal`` functions are called from compiled code only (no Python wrapper either).

Numba keys a cached function to its own source file: after editing a compiled helper in another
module, clear the ``__pycache__`` folders (or set ``NUMBA_CACHE_DIR`` anew) before timing.
"""

from numba import njit

jit = njit(cache=True, no_cfunc_wrapper=True)
inline = njit(cache=True, no_cfunc_wrapper=True, inline="always")
internal = njit(cache=True, no_cfunc_wrapper=True, no_cpython_wrapper=True)
