"""The distributed parameter-sweep service: sweep files, planning, Dask execution, the run store, assembly.

Typical use in a notebook::

    from distributed import Client
    from epmsweep.sweep import run_sweep
    tree = run_sweep("sweep.yaml", out="results", client=Client())   # xarray.DataTree
    tree["imposed_rate"].ds.stress
"""

from .assemble import open_results
from .client import open_client
from .execute import assemble, run_sweep
from .plan import Plan, Run, make_plan
from .spec import Spec, SpecError, parse_spec
from .store import RunStore

load_spec = parse_spec

__all__ = [
    "Plan",
    "Run",
    "RunStore",
    "Spec",
    "SpecError",
    "assemble",
    "open_results",
    "load_spec",
    "make_plan",
    "open_client",
    "parse_spec",
    "run_sweep",
]
