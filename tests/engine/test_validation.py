"""Impossible parameters give one clear error naming the field."""

import math

import pytest
from epmsweep.engine import (
    ImposedRate,
    ImposedStress,
    InitialState,
    ModelParameters,
    NumericalInstabilityError,
    ParameterError,
    ThresholdDistribution,
    simulate,
)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tau_pl": -1.0}, "tau_pl"),
        ({"tau_res": 0.0}, "tau_res"),
        ({"tau": math.nan}, "tau"),
        ({"dt": math.inf}, "dt"),
        ({"dt": 0.5}, "dt"),
        ({"L": 1}, "L"),
        ({"L": 3.5}, "L"),
        ({"kernel": "gaussian"}, "kernel"),
    ],
)
def test_bad_model_parameters_name_the_field(kwargs, field):
    with pytest.raises(ParameterError) as err:
        ModelParameters(**kwargs)
    assert err.value.field == field
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shape": -1.5}, "thresholds.shape"),
        ({"scale": math.nan}, "thresholds.scale"),
        ({"shift": -0.1}, "thresholds.shift"),
        ({"quantiles": (0.3, 0.2, 0.5)}, "thresholds.quantiles"),
    ],
)
def test_bad_threshold_distribution(kwargs, field):
    with pytest.raises(ParameterError) as err:
        ThresholdDistribution(**kwargs)
    assert err.value.field == field


def test_bad_protocols():
    with pytest.raises(ParameterError, match="shear_rate"):
        ImposedRate(-1e-3, strain_end=1.0)
    with pytest.raises(ParameterError, match="strain_end"):
        ImposedRate(1e-3)
    with pytest.raises(ParameterError, match="strain_end"):
        ImposedRate(1e-3, strain_end=1.0, t_end=5.0)
    with pytest.raises(ParameterError, match="stress"):
        ImposedStress(math.nan, t_end=10.0)
    with pytest.raises(ParameterError, match="t_end"):
        ImposedStress(0.6, t_end=-1.0)
    with pytest.raises(ParameterError, match="snapshot_times"):
        ImposedStress(0.6, t_end=1.0, snapshot_times=(5.0,)).schedule(0.01)
    # times whose step count does not fit an integer are still beyond the end, not wrapped around
    with pytest.raises(ParameterError, match="snapshot_times"):
        ImposedStress(0.6, t_end=1.0, snapshot_times=(1e300,)).schedule(0.01)
    with pytest.raises(ParameterError, match="snapshot_strains"):
        ImposedRate(1e-300, strain_end=1e-299, snapshot_strains=(1e10,)).schedule(0.01)


def test_initial_state_must_match_lattice():
    state = InitialState.rejuvenated(8, seed=0)
    with pytest.raises(ParameterError, match="initial_state"):
        simulate(ModelParameters(L=16), state, ImposedRate(1e-2, strain_end=0.1), seed=0)


def test_bad_maps():
    import numpy as np

    with pytest.raises(ParameterError, match="threshold"):
        InitialState(np.ones((4, 5)), np.zeros((4, 5)))
    with pytest.raises(ParameterError, match="stress"):
        InitialState(np.ones((4, 4)), np.zeros((5, 5)))
    with pytest.raises(ParameterError, match="non-finite"):
        InitialState(np.full((4, 4), np.nan), np.zeros((4, 4)))
    with pytest.raises(ParameterError, match="shear_modulus"):
        InitialState(np.ones((4, 4)), np.zeros((4, 4)), shear_modulus=0.0)


@pytest.mark.parametrize("stress", [1e307, 1.7e308])
def test_numerical_blow_up_is_detected(stress):
    """Overflow of the stresses or of the accumulated plastic strain is an error, never an inf in the output."""
    with pytest.raises(NumericalInstabilityError, match="non-finite"):
        simulate(ModelParameters(L=8), InitialState.rejuvenated(8, seed=0), ImposedStress(stress, t_end=5.0), seed=0)
