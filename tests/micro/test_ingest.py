"""Initial states from a user's own LAMMPS dump (written here by real LAMMPS)."""

import numpy as np
import pytest
from epmsweep.engine import InitialState, ParameterError
from epmsweep.micro import Configuration, initial_state_from_dump, read_dump, stress_map, stress_map_from_dump
from epmsweep.micro.model import GlassModel
from epmsweep.micro.modulus import apply_strain
from epmsweep.micro.simulation import Simulation


def _sheared_dump(glass: Configuration, path, strain: float) -> Configuration:
    """Shear ``glass`` affinely and relax it, dump it as a user would; return the dumped configuration."""
    with Simulation(GlassModel(), glass) as sim:
        apply_strain(sim, strain)
        sim.minimize()
        sim.commands(
            "compute s all stress/atom NULL",
            f"dump d all custom 1 {path} id type x y c_s[4]",
            "dump_modify d format float %.17g",
            "run 0",
            "undump d",
        )
        return sim.configuration()


def test_dump_of_a_sheared_glass_gives_the_same_map_as_the_configuration(glasses, tmp_path):
    path = tmp_path / "user.dump"
    sheared = _sheared_dump(glasses["E2"], path, 0.05)
    frame = read_dump(path)
    assert frame.box[2] == pytest.approx(0.05 * frame.box[1], rel=1e-9)  # triclinic bounds undone
    from_dump = stress_map_from_dump(path, 4)
    direct, global_stress = stress_map(sheared, 4)
    np.testing.assert_allclose(from_dump, direct, atol=1e-12)
    assert abs(from_dump.mean() - global_stress) < 1e-12
    assert global_stress > 0.2  # sheared by 5 %: the map is of a loaded glass, not of the start


def test_initial_state_from_dump_with_supplied_thresholds(glasses, tmp_path):
    path = tmp_path / "user.dump"
    _sheared_dump(glasses["E1"], path, 0.0)
    thresholds = np.full((3, 3), 0.8)
    state = initial_state_from_dump(path, 3, threshold=thresholds, shear_modulus=12.0)
    back = InitialState.load(state.save(tmp_path / "state.nc"))
    np.testing.assert_array_equal(back.threshold, thresholds)
    np.testing.assert_allclose(back.stress, stress_map(glasses["E1"], 3)[0], atol=1e-12)
    assert back.shear_modulus == 12.0 and back.provenance["thresholds_method"] == "supplied"


def test_dump_problems_are_named(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        read_dump(tmp_path / "none.dump")
    bad = tmp_path / "bad.dump"
    bad.write_text("hello\n")
    with pytest.raises(ParameterError, match="not a LAMMPS text dump"):
        read_dump(bad)
    two = tmp_path / "two.dump"
    two.write_text(
        "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n0 10\n0 10\n-0.5 0.5\n"
        "ITEM: ATOMS id type x y c_a[4] c_b[4]\n1 1 1.0 1.0 0.1 0.2\n2 2 5.0 5.0 0.3 0.4\n"
    )
    with pytest.raises(ParameterError, match="stress_column"):
        stress_map_from_dump(two, 2)
    np.testing.assert_allclose(stress_map_from_dump(two, 2, "c_b[4]"), [[0.2 / 25, 0], [0, 0.4 / 25]])
