"""The scalar 2D lattice elasto-plastic model of Liu, Dutta, Chaudhuri & Martens (PRL 2021).

Pure computation: no files except initial states, no Dask. Typical use::

    from epmsweep.engine import ModelParameters, InitialState, ImposedRate, simulate
    p = ModelParameters(L=32)
    state = InitialState.rejuvenated(32, seed=1)
    ds = simulate(p, state, ImposedRate(1e-3, strain_end=5.0), seed=7)
"""

from .errors import EndlessAvalancheError, NumericalInstabilityError, ParameterError
from .initial_state import DEFAULT_SHEAR_MODULUS, InitialState
from .parameters import ModelParameters
from .propagator import fourier_propagator, real_space_propagator
from .protocols import ImposedRate, ImposedStress, Protocol, Quasistatic
from .simulate import RunRecord, deferral_limit, fft_crossover, simulate, simulate_record
from .thresholds import ThresholdDistribution
from .version import RESULT_FORMAT_VERSION, __version__

__all__ = [
    "DEFAULT_SHEAR_MODULUS",
    "EndlessAvalancheError",
    "RESULT_FORMAT_VERSION",
    "ImposedRate",
    "ImposedStress",
    "InitialState",
    "ModelParameters",
    "NumericalInstabilityError",
    "ParameterError",
    "Protocol",
    "Quasistatic",
    "RunRecord",
    "ThresholdDistribution",
    "__version__",
    "deferral_limit",
    "fft_crossover",
    "fourier_propagator",
    "real_space_propagator",
    "simulate",
    "simulate_record",
]
