"""Threshold and gap distributions as references: file validation, the objective, references from a sweep."""

import numpy as np
import pytest
import xarray as xr
import yaml
from epmsweep.calibrate import (
    OBSERVABLES,
    Curve,
    model_curve,
    objective_terms,
    parse_calibration,
    reference_from_groups,
)
from epmsweep.calibrate.objective import bin_edges
from epmsweep.engine.units import STRESS
from epmsweep.sweep import run_sweep
from epmsweep.sweep.spec import SpecError

from .conftest import calibration_dict

RATE = 0.1
THRESHOLDS = np.linspace(0.2, 1.0, 5)  # bin centres [stress]
GAPS = np.linspace(0.1, 0.9, 5)
SWEEP_GAPS = np.linspace(-3.0, -0.5, 6)  # at this rate the local stresses mostly exceed the thresholds


def fields(shift: float, seeds: int = 4) -> xr.Dataset:
    """An imposed-rate group with snapshots (2 per replica, 8 x 8): Weibull thresholds moved by ``shift``."""
    rng = np.random.default_rng(5)
    shape = (1, 1, seeds, 2, 8, 8)
    dims = ("initial_state", "shear_rate", "seed", "snapshot_strain", "y", "x")
    return xr.Dataset(
        {
            "threshold": (dims, 0.57 * rng.weibull(1.5, shape) + shift),
            "local_stress": (dims, rng.normal(0.1, 0.1, shape)),
        },
        coords={"initial_state": ["s"], "shear_rate": [RATE], "seed": np.arange(seeds), "snapshot_strain": [1.0, 2.0]},
        attrs={"protocol": "imposed_rate"},
    )


def reference(groups: dict, observable: str, x) -> Curve:
    """The reference curve of ``groups`` on the bins centred on ``x``, via ``reference_from_groups``."""
    obs = OBSERVABLES[observable]
    ds = reference_from_groups(groups, observable, x, "s", RATE)
    return Curve(observable, obs, "s", RATE, 1.0, ds[obs.x].values, ds[obs.y].values, ds[f"{obs.y}_err"].values)


def test_bins_are_centred_on_the_reference_points():
    np.testing.assert_allclose(bin_edges([1.0, 2.0, 4.0]), [0.5, 1.5, 3.0, 5.0])
    np.testing.assert_allclose(bin_edges(THRESHOLDS), np.linspace(0.1, 1.1, 6))


def test_density_is_pooled_with_the_replica_error_of_per_seed_histograms():
    ds = fields(0.0)
    m = model_curve({"imposed_rate": ds}, reference({"imposed_rate": ds}, "threshold_distribution", THRESHOLDS))
    values = ds["threshold"].values[0, 0]
    edges = np.linspace(0.1, 1.1, 6)
    np.testing.assert_allclose(m["mean"], np.histogram(values.ravel(), edges, density=True)[0])
    per_seed = np.array([np.histogram(v.ravel(), edges, density=True)[0] for v in values])
    np.testing.assert_allclose(m["err"], per_seed.std(axis=0, ddof=1) / 2)
    np.testing.assert_allclose(m[OBSERVABLES["threshold_distribution"].x], THRESHOLDS)
    ds["threshold"][0, 0, 1] = np.nan  # a failed run: no objective
    gap = reference({"imposed_rate": fields(0.0)}, "gap_distribution", GAPS)
    assert np.all(np.isnan(model_curve({"imposed_rate": ds}, gap)["mean"]))


@pytest.mark.parametrize(("observable", "x"), [("threshold_distribution", THRESHOLDS), ("gap_distribution", GAPS)])
def test_objective_is_zero_at_the_truth_and_grows_away_from_it(observable, x):
    ref = reference({"imposed_rate": fields(0.0)}, observable, x)
    assert np.all(ref.err > 0)
    terms = [objective_terms({"imposed_rate": fields(shift)}, (ref,))[observable] for shift in (0.0, 0.05, 0.1, 0.2)]
    assert terms[0] == pytest.approx(0.0, abs=1e-20)
    assert np.all(np.diff(terms) > 0) and terms[-1] > 25  # 0.2 away: many sigmas


def distribution_refs(folder, groups) -> dict:
    """Both distributions of ``groups`` written as references in ``folder`` (netCDF and CSV)."""
    reference_from_groups(groups, "threshold_distribution", THRESHOLDS, "rejuvenated", RATE).to_netcdf(
        folder / "pth.nc"
    )
    gap = reference_from_groups(groups, "gap_distribution", SWEEP_GAPS, "rejuvenated", RATE)
    rows = [
        f"{g},{10 * d},{10 * e}"
        for g, d, e in zip(SWEEP_GAPS, gap["density"].values, gap["density_err"].values, strict=True)
    ]
    (folder / "px.csv").write_text(  # density per 10 stress units: converted
        f"gap [{STRESS}],density [1 / (10 * {STRESS})],density_err [1 / (10 * {STRESS})]\n" + "\n".join(rows) + "\n"
    )
    return {"pth": {"observable": "threshold_distribution", "path": "pth.nc", "shear_rate": RATE},
            "px": {"observable": "gap_distribution", "path": "px.csv", "shear_rate": RATE}}  # fmt: skip


@pytest.fixture(scope="module")
def sweep_groups(tmp_path_factory, client):
    """A small sweep with snapshots in the steady state: L = 8, 3 replicas, one rate."""
    folder = tmp_path_factory.mktemp("distributions")
    sweep = {"name": "snap", "seed": 11, "replicas": 3, "model": {"L": 8}, "initial_states": {"rejuvenated": {
             "kind": "rejuvenated"}}, "imposed_rate": {"shear_rate": [RATE], "strain_end": 1.0, "n_records": 10,
             "snapshot_strains": [0.6, 0.8, 1.0]}}  # fmt: skip
    tree = run_sweep(sweep, out=folder / "store", client=client, progress=False)
    return folder, {name: tree[name].to_dataset() for name in tree.children}


def test_reference_from_groups_round_trip(sweep_groups, tmp_path):
    """References made from a sweep read back (units converted) and give a zero objective on that sweep."""
    _, groups = sweep_groups
    raw = calibration_dict(distribution_refs(tmp_path, groups))
    raw["imposed_rate"] = {"strain_end": 1.0, "n_records": 10, "snapshot_strains": [0.6, 0.8, 1.0]}
    del raw["imposed_stress"]
    path = tmp_path / "snap.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = parse_calibration(path)
    curves = {c.name: c for c in spec.references}
    direct = model_curve(groups, curves["px"])
    np.testing.assert_allclose(curves["px"].y, direct["mean"])  # 10 * density per 10 stress units
    np.testing.assert_allclose(curves["pth"].x, THRESHOLDS)
    assert np.all(curves["pth"].err > 0) and np.all(curves["px"].err > 0)
    terms = objective_terms(groups, spec.references)
    assert terms == pytest.approx({"pth": 0.0, "px": 0.0}, abs=1e-20)
    candidate = spec.candidate({"tau_res": 3.0, "thresholds.scale": 0.6})
    kwargs, rates = candidate.protocols["imposed_rate"]
    assert rates == (RATE,) and tuple(kwargs["snapshot_strains"]) == (0.6, 0.8, 1.0)


def test_distribution_without_snapshots_is_an_error_naming_file_and_field(sweep_groups, tmp_path):
    _, groups = sweep_groups
    path = tmp_path / "nosnap.yaml"
    path.write_text(yaml.safe_dump(calibration_dict(distribution_refs(tmp_path, groups))))  # no snapshot_strains
    with pytest.raises(SpecError) as info:
        parse_calibration(path)
    assert {f for f, _ in info.value.errors} == {"references.pth", "references.px"}
    message = str(info.value)
    assert str(path) in message and "imposed_rate.snapshot_strains" in message
