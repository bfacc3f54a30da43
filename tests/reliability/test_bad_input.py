"""Malformed sweep files and initial-state files: always one clear error, never a deep traceback.

Hypothesis generates the inputs: each example mutates one field of a valid sweep (wrong type,
NaN/inf, negative or zero, huge, unknown key, removed key) or builds a broken state map. The
figures (examples tried, errors by field) are recorded for RELIABILITY.md.
"""

import collections
import math

import numpy as np
import pytest
import xarray as xr
from conftest import record_figure, small_spec
from epmsweep.engine import InitialState, ParameterError
from epmsweep.sweep import SpecError, parse_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, -0.5, 1e300, -1e-300, 10**9, math.nan, math.inf, -math.inf]),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(obj, prefix=()):
    """Every path to a value of a nested dict/list."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _mutate(spec, path, action, value):
    parent = spec
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "unknown_key" and isinstance(parent, dict):
        parent[f"unknown_{last}"] = value
    return spec


SPEC_PATHS = list(_paths(small_spec()))
OUTCOMES: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _record_outcomes():
    yield
    total = sum(OUTCOMES.values())
    if total:
        record_figure("Bad input", f"{total} generated inputs; outcome by field: {dict(sorted(OUTCOMES.items()))}")


@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(SPEC_PATHS),
    action=st.sampled_from(["replace", "replace", "delete", "unknown_key"]),
    value=JUNK,
)
def test_malformed_specs_give_one_clear_error(path, action, value):
    spec = _mutate(small_spec(), path, action, value)
    try:
        parse_spec(spec)
    except SpecError as err:
        message = str(err)
        assert message.startswith("<dict>: ") and err.field and err.reason, message
        assert "Traceback" not in message
        OUTCOMES[err.field.split("[")[0].split(".")[0]] += 1
    else:
        OUTCOMES["accepted"] += 1  # the mutation left a valid sweep (e.g. an integer where a float is allowed)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    shape=st.tuples(st.integers(0, 6), st.integers(0, 6)),
    poison=st.sampled_from([None, math.nan, math.inf, -1.0]),
    mu=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3), st.none()),
    drop=st.sampled_from([None, "threshold", "stress"]),
)
def test_malformed_initial_state_files_give_one_clear_error(tmp_path_factory, shape, poison, mu, drop):
    """A state file with a broken map, modulus or variable: ParameterError naming the file and the field."""
    thr = np.full(shape, 0.5)
    if poison is not None and thr.size:
        thr.flat[0] = poison
    variables = {"threshold": (("y", "x"), thr), "stress": (("y", "x"), np.zeros(shape))}
    variables.pop(drop, None)
    path = tmp_path_factory.mktemp("state") / "state.nc"
    xr.Dataset(variables, attrs={} if mu is None else {"shear_modulus": mu}).to_netcdf(path)
    try:
        state = InitialState.load(path)
    except ParameterError as err:
        assert str(path) in err.field and err.reason, str(err)
        OUTCOMES[f"state:{err.field.rsplit(':', 1)[-1]}"] += 1
    else:
        assert drop is None and shape[0] == shape[1] >= 2 and poison is None and state.shear_modulus > 0
        OUTCOMES["state:accepted"] += 1
