"""Sweep files: a good file parses; every class of bad input gives one error naming file, field and reason."""

import numpy as np
import pytest
from conftest import small_spec, write_spec
from epmsweep.engine import InitialState
from epmsweep.sweep import SpecError, make_plan, parse_spec


def test_good_file_parses_and_expands(tmp_path):
    spec = small_spec(axes={"tau_res": [1.5, 2.0, 2.5], "thresholds.shift": {"linspace": [0, 0.2, 3]}},
                      zip=[["tau_res", "thresholds.shift"]])
    parsed = parse_spec(write_spec(tmp_path / "s.yaml", spec))
    plan = make_plan(parsed)
    # 2 states x (2 rates + 2 stresses) x 3 zipped values x 2 replicas
    assert len(plan.runs) == 2 * 4 * 3 * 2
    assert plan.dims["imposed_rate"] == ("initial_state", "shear_rate", "tau_res", "seed")
    assert plan.coords["imposed_rate"]["thresholds_shift"] == ("tau_res", [0.0, 0.1, 0.2])


def test_ranges():
    spec = parse_spec(small_spec(imposed_rate={"shear_rate": {"logspace": [-4, -2, 3]}, "strain_end": 1.0}))
    np.testing.assert_allclose(spec.protocols["imposed_rate"][1], [1e-4, 1e-3, 1e-2])


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"colour": "red"}, "colour", "unknown key"),
        ({"model": {"L": 8, "tua": 1.0}}, "model.tua", "unknown key"),
        ({"replicas": "four"}, "replicas", "integer"),
        ({"seed": -1}, "seed", "integer >= 0"),
        ({"model": {"L": 8, "tau_pl": -1.0}}, "model.tau_pl", "> 0"),
        ({"model": {"L": 8, "dt": 0.5}}, "model.dt", "shortest time"),
        ({"model": {"L": 100000}}, "model.L", "<="),
        ({"imposed_rate": {"shear_rate": [0.01, -0.001], "strain_end": 1.0}}, "imposed_rate.shear_rate[1]", "> 0"),
        ({"imposed_rate": {"shear_rate": [0.01, None], "strain_end": 1.0}}, "imposed_rate.shear_rate[1]", "scalar"),
        ({"imposed_rate": {"shear_rate": [0.01]}}, "imposed_rate.strain_end", "exactly one"),
        ({"imposed_stress": {"stress": [0.5], "t_end": float("nan")}}, "imposed_stress.t_end", "finite"),
        ({"imposed_stress": {"stress": [0.5], "t_end": 1.0, "snapshot_times": [3.0]}}, "snapshot_times", "beyond"),
        ({"axes": {"tau_res": [1.0, -2.0]}}, "axes.tau_res[1]", "> 0"),
        ({"axes": {"mu": [1.0]}}, "axes.mu", "unknown model parameter"),
        ({"axes": {"tau_res": [1.0, 2.0], "tau_pl": [1.0]}, "zip": [["tau_res", "tau_pl"]]}, "zip[0]", "equal lengths"),
        ({"initial_states": {"E1": {"kind": "quenched"}}}, "initial_states.E1.kind", "must be one of"),
        ({"initial_states": {"E1": {"kind": "annealed", "shift": -0.1}}}, "initial_states.E1.shift", ">= 0"),
        ({"initial_states": {"E1": {"path": "missing.nc"}}}, "initial_states.E1.path", "does not exist"),
    ],
)
def test_bad_specs_name_file_field_and_reason(tmp_path, change, field, reason):
    path = write_spec(tmp_path / "bad.yaml", small_spec(**change))
    with pytest.raises(SpecError) as err:
        parse_spec(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert field in message and reason in message, message


def test_no_protocol_is_an_error(tmp_path):
    spec = {k: v for k, v in small_spec().items() if not k.startswith("imposed")}
    with pytest.raises(SpecError, match="at least one protocol"):
        parse_spec(write_spec(tmp_path / "s.yaml", spec))


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_spec(bad)
    with pytest.raises(SpecError, match="does not exist"):
        parse_spec(tmp_path / "nope.yaml")


def test_file_state_is_checked_against_lattice(tmp_path):
    InitialState.rejuvenated(16, seed=0).save(tmp_path / "s16.nc")
    spec = small_spec(initial_states={"measured": {"path": "s16.nc"}})
    with pytest.raises(SpecError, match="does not match L"):
        parse_spec(write_spec(tmp_path / "s.yaml", spec))
    (tmp_path / "corrupt.nc").write_bytes(b"\x89HDF garbage")
    spec = small_spec(initial_states={"measured": {"path": "corrupt.nc"}})
    with pytest.raises(SpecError, match="initial_states.measured.path.*not a readable netCDF"):
        parse_spec(write_spec(tmp_path / "s.yaml", spec))


SMALL_YAML = """\
name: small
seed: 7
replicas: 2
model: {L: 8}
initial_states:
  rejuvenated: {kind: rejuvenated}
imposed_rate:
  shear_rate: [1e-3, 3e-2]
  strain_end: 0.3
imposed_stress:
  stress: [0.4]
  t_end: 5.0
"""


def test_yaml_1_2_exponents_are_numbers(tmp_path):
    """`1e-3` is a float in YAML 1.2 (a string under PyYAML's YAML 1.1)."""
    path = tmp_path / "s.yaml"
    path.write_text(SMALL_YAML)
    spec = parse_spec(path)
    assert spec.protocols["imposed_rate"][1] == (1e-3, 3e-2)
    assert spec.text == SMALL_YAML


def test_duplicate_keys_are_errors_naming_key_and_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(SMALL_YAML.replace("replicas: 2\n", "replicas: 2\nname: other\n").replace(
        "  strain_end: 0.3\n", "  strain_end: 0.3\n  strain_end: 0.4\n"))
    with pytest.raises(SpecError) as err:
        parse_spec(path)
    assert err.value.errors == [
        ("name", "duplicate key at line 4 (first given at line 1)"),
        ("imposed_rate.strain_end", "duplicate key at line 11 (first given at line 10)"),
    ]
    assert str(err.value).splitlines() == [f"{path}: name: duplicate key at line 4 (first given at line 1)",
                                           f"{path}: imposed_rate.strain_end: duplicate key at line 11 "
                                           "(first given at line 10)"]


def test_missing_required_protocol_field_is_named(tmp_path):
    path = write_spec(tmp_path / "s.yaml", small_spec(imposed_stress={"stress": [0.5]}))
    with pytest.raises(SpecError) as err:
        parse_spec(path)
    assert str(err.value) == f"{path}: imposed_stress.t_end: is required"


def test_every_error_of_a_file_is_reported_at_once(tmp_path):
    spec = small_spec(replicas=0, model={"L": 8, "tau": -1.0, "tua": 2},
                      imposed_rate={"shear_rate": [0.01, -0.02], "strain_end": 1.0},
                      imposed_stress={"stress": [0.5]}, axes={"tau_res": [2, 2.0]})
    path = write_spec(tmp_path / "s.yaml", spec)
    with pytest.raises(SpecError) as err:
        parse_spec(path)
    expected = {
        ("replicas", "must be an integer in 1..100000, got 0"),
        ("model.tua", "unknown key; allowed: ['L', 'dt', 'kernel', 'normalise_self', 'tau', 'tau_pl', 'tau_res']"),
        ("model.tau", "must be a finite number > 0, got -1.0"),
        ("imposed_rate.shear_rate[1]", "must be a finite number > 0, got -0.02"),
        ("imposed_stress.t_end", "is required"),
        ("axes.tau_res", "values must be distinct, got [2.0, 2.0]"),
    }
    assert set(err.value.errors) == expected
    lines = str(err.value).splitlines()
    assert len(lines) == len(expected) and all(line.startswith(f"{path}: ") for line in lines)
    assert (err.value.field, err.value.reason) == err.value.errors[0]


def test_axis_values_take_the_declared_type():
    spec = parse_spec(small_spec(axes={"tau_res": [1, 0.5], "L": [8, 16]},
                                 imposed_rate={"shear_rate": [1, 1.5, 2.5], "strain_end": 1}))
    tau_res, L = spec.axes
    assert tau_res.values == (1.0, 0.5) and all(type(v) is float for v in tau_res.values)
    assert L.values == (8, 16) and all(type(v) is int for v in L.values)
    rates = spec.protocols["imposed_rate"][1]
    assert rates == (1.0, 1.5, 2.5) and all(type(v) is float for v in rates)
    assert type(spec.protocols["imposed_rate"][0]["strain_end"]) is float
    # an integer range over an integer field stays integer
    assert parse_spec(small_spec(axes={"L": {"linspace": [8, 16, 3]}})).axes[0].values == (8, 12, 16)


@pytest.mark.parametrize(
    ("axes", "field", "reason"),
    [
        ({"tau_res": [1, 1.0]}, "axes.tau_res", "values must be distinct"),
        ({"L": [8, 16.0]}, "axes.L[1]", "must be an integer"),
        ({"L": {"linspace": [8, 16, 4]}}, "axes.L", "non-integer values"),
        ({"kernel": ["continuum", "lattice"]}, "axes.kernel", "only numeric parameters can be swept"),
        ({"normalise_self": [True, False]}, "axes.normalise_self", "only numeric parameters can be swept"),
        ({"tau_res": ["fast", "slow"]}, "axes.tau_res[0]", "must be a finite number > 0, got 'fast'"),
    ],
)
def test_axis_values_of_the_wrong_type_are_rejected(axes, field, reason):
    with pytest.raises(SpecError) as err:
        parse_spec(small_spec(axes=axes))
    assert err.value.field == field and reason in err.value.reason, str(err.value)


def test_model_integer_fields_reject_floats_and_seed_is_bounded():
    with pytest.raises(SpecError, match=r"model.L: must be an integer"):
        parse_spec(small_spec(model={"L": 8.0}))
    assert parse_spec(small_spec(seed=2**63 - 1)).seed == 2**63 - 1
    for seed in (2**63, -1, 1.5, True):
        with pytest.raises(SpecError, match="seed: must be an integer >= 0 and <= 2"):
            parse_spec(small_spec(seed=seed))


def test_string_fields_are_checked_against_their_choices():
    assert parse_spec(small_spec(model={"L": 8, "kernel": "lattice"})).model_parameters({}).kernel == "lattice"
    with pytest.raises(SpecError, match=r"model.kernel: must be one of \('continuum', 'lattice'\), got 'gauss'"):
        parse_spec(small_spec(model={"L": 8, "kernel": "gauss"}))
