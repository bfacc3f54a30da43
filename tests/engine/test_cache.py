"""The on-disk Numba cache never runs stale compiled code."""

import os
import shutil
import subprocess
import sys

from epmsweep.engine.jit import ENGINE_DIR

RUN = """
import epmsweep.engine as engine
from epmsweep.engine import ImposedRate, InitialState, ModelParameters, simulate
assert engine.__file__.startswith({root!r}), engine.__file__
ds = simulate(ModelParameters(L=32), InitialState.rejuvenated(32, seed=1), ImposedRate(1e-3, strain_end=0.05),
              seed=2, redistribution="deferred")
print(ds.attrs["deferred_flushes"])
"""


def test_editing_a_helper_in_another_file_recompiles_the_time_loop(tmp_path):
    """The time loop (engine/stepping.py) carries the code of helpers from other files. Widening
    the deferral's round-off margin in engine/deferred.py tracks more sites, hence more flushes:
    the run after the edit must show it, though stepping.py is unchanged and the cache is warm."""
    shutil.copytree(ENGINE_DIR, tmp_path / "epmsweep" / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}

    def flushes() -> int:
        script = RUN.format(root=str(tmp_path))
        return int(subprocess.check_output([sys.executable, "-c", script], env=env, text=True, cwd=tmp_path))

    before = flushes()
    deferred = tmp_path / "epmsweep" / "engine" / "deferred.py"
    source = deferred.read_text()
    assert source.count("return 1e-9 * (1.0 + scale)") == 1
    deferred.write_text(source.replace("return 1e-9 * (1.0 + scale)", "return 0.05 * (1.0 + scale)"))
    after = flushes()
    assert after > before > 0


def test_engine_locator_is_numbas_usual_one_but_for_the_stamp():
    """Numba reads the usual locator's attributes too (e.g. the file named in its warnings)."""
    from epmsweep.engine import stepping
    from epmsweep.engine.jit import EngineCacheLocator

    locator = EngineCacheLocator.from_function(stepping.run.py_func, stepping.__file__)
    inner = locator._inner
    assert locator._py_file == inner._py_file == stepping.__file__
    assert locator.get_cache_path() == inner.get_cache_path()
    assert locator.get_source_stamp() == (inner.get_source_stamp(), EngineCacheLocator.digest)
    assert EngineCacheLocator.from_function(test_engine_locator_is_numbas_usual_one_but_for_the_stamp, __file__) is None
