"""The particle-to-lattice calibration's shipped inputs: the calibration file and the particle references agree."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from epmsweep.calibrate import OBSERVABLES, load_curve, parse_calibration

EXAMPLES = Path(__file__).parents[2] / "examples"
DATA = EXAMPLES / "data" / "particles"


def test_calibration_file_validates_with_the_shipped_references():
    spec = parse_calibration(EXAMPLES / "calibrate_particles.yaml")
    by_name = {c.name: c for c in spec.references}
    assert {c.observable.name for c in by_name.values()} == {"flow_curve", "stress_strain"}
    assert by_name["flow"].x.size >= 3 and np.all(by_name["flow"].err > 0)
    glasses = xr.load_dataset(DATA / "glasses.nc")
    assert glasses.sizes["glass"] >= 2
    mu = spec.sweep["initial_states"]["E1"]["shear_modulus"]
    assert mu == pytest.approx(float(glasses["shear_modulus"].mean()), abs=0.01)  # the glasses' modulus
    assert np.allclose(by_name["flow"].y, glasses["steady_stress"].mean("glass"))  # mean over the glasses


def test_the_predicted_creep_curve_is_a_reference_the_runs_cover():
    creep = load_curve(DATA / "creep.nc", "creep", OBSERVABLES["creep"], "E1", 0.7, 1.0)
    spec = parse_calibration(EXAMPLES / "calibrate_particles.yaml")
    assert creep.x[0] > 0 and creep.x[-1] <= spec.sweep["imposed_stress"]["t_end"]
    assert np.all(np.diff(creep.y) > -3 * creep.err[1:])  # the particle strain grows under creep at 0.7
