"""Quasistatic analysis: flow stress, overshoot, stress-strain, avalanche exponents and their figures.

Groups are stacked here from real engine runs the way an assembled ``quasistatic`` group is laid
out: dims (initial_state, seed, avalanche), runs of different lengths padded with NaN (float
series) and -1 (``activations``), ``n_avalanches`` and a ``completed`` mask per run, ``shear_modulus``
a coordinate on ``initial_state``.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from epmsweep.analysis import (  # noqa: E402
    avalanche_distribution,
    fit_avalanches,
    fitted_density,
    flow_curve,
    plot_avalanche_distribution,
    plot_flow_curve,
    plot_quasistatic_flow_stress,
    plot_quasistatic_stress_strain,
    quasistatic_flow_stress,
    quasistatic_overshoot,
    quasistatic_stress_strain,
    save_figure,
    steady_events,
    write_figures,
)
from epmsweep.engine import InitialState, ModelParameters, Quasistatic, simulate  # noqa: E402

SERIES = Quasistatic.series
FILL = {name: (-1 if name == "activations" else np.nan) for name in SERIES}


def quasistatic_group(runs: dict[str, list[xr.Dataset]]) -> xr.Dataset:
    """Stack engine runs, ``runs[state] = [run of seed 0, seed 1, ...]``, into an assembled-like group."""
    per_state = []
    for seeds in runs.values():
        stacked = xr.concat([r[list(SERIES)].drop_attrs() for r in seeds], dim="seed", join="outer",
                            fill_value=FILL).assign_coords(seed=np.arange(len(seeds)))  # fmt: skip
        per_state.append(stacked.assign_coords(shear_modulus=seeds[0].attrs["shear_modulus"]))
    ds = xr.concat(per_state, dim="initial_state", join="outer", fill_value=FILL)
    ds = ds.assign_coords(initial_state=list(runs))
    ds["activations"] = ds["activations"].astype(np.int64)
    ds["n_avalanches"] = ds["strain"].notnull().sum("avalanche")
    ds["completed"] = ds["n_avalanches"] > 0
    return ds.assign_attrs(protocol="quasistatic")


def sawtooth_group() -> xr.Dataset:
    """Constructed runs: Sigma rises from c - 0.5 to c + 0.5 between avalanches at strains 1, 2, ...

    Seed 0: c = 1, 8 avalanches; seed 1: c = 2, 4 avalanches (padded); seed 2: not completed, with
    values that would change every result if they were read."""
    n = 8
    strain = np.full((3, n), np.nan)
    before, after = strain.copy(), strain.copy()
    activations = np.full((3, n), -1)
    for seed, (c, length) in enumerate([(1.0, 8), (2.0, 4), (50.0, 8)]):
        strain[seed, :length] = np.arange(1, length + 1)
        before[seed, :length], after[seed, :length] = c + 0.5, c - 0.5
        activations[seed, :length] = 3
    dims = ("seed", "avalanche")
    ds = xr.Dataset(
        {"strain": (dims, strain), "stress_before": (dims, before), "stress_after": (dims, after),
         "avalanche_size": (dims, np.where(np.isfinite(strain), 0.2, np.nan)), "activations": (dims, activations),
         "completed": ("seed", [True, True, False])},
        coords={"seed": [0, 1, 2], "avalanche": np.arange(n)}, attrs={"shear_modulus": 1.0},
    )  # fmt: skip
    return ds


def test_flow_stress_is_the_sawtooth_mean_with_its_standard_error_and_padding_ignored():
    """Each segment between avalanches averages to c: per run 1 and 2, mean 1.5 +- 0.5 (sem of two),
    no drift; the run that is not completed and the padded records are never read."""
    ds = sawtooth_group()
    flow = quasistatic_flow_stress(ds)
    assert float(flow["flow_stress"]) == pytest.approx(1.5, abs=1e-12)
    assert float(flow["flow_stress_err"]) == pytest.approx(0.5, abs=1e-12)
    assert int(flow["flow_stress_n"]) == 2
    assert bool(flow["steady"]) and float(flow["flow_stress_drift"]) == pytest.approx(0.0, abs=1e-12)
    curve = quasistatic_stress_strain(ds, bins=np.arange(1.0, 9.0))
    np.testing.assert_allclose(curve["stress"].values, [1.5] * 3 + [1.0] * 4, atol=1e-12)
    np.testing.assert_array_equal(curve["stress_n"].values, [2] * 3 + [1] * 4)
    events = steady_events(ds, "activations")
    assert int(events.notnull().sum()) == 5 + 3, "steady avalanches of the completed runs only (no -1)"
    assert float(events.min()) == 3


def test_bad_inputs_name_the_field():
    ds = sawtooth_group()
    with pytest.raises(ValueError, match="start_fraction must be in"):
        quasistatic_flow_stress(ds, start_fraction=1.0)
    with pytest.raises(ValueError, match="variable must be one of"):
        fit_avalanches(ds, "stress_drop")
    with pytest.raises(ValueError, match="missing"):
        quasistatic_flow_stress(ds.drop_vars("stress_after"))


@pytest.fixture(scope="module")
def states():
    """Rejuvenated and annealed (thresholds shifted by 0.6) 32 x 32 lattices, 4 seeds each, strain 1.2."""
    params = ModelParameters(L=32)
    runs = {"rejuvenated": [], "annealed": []}
    for seed in range(4):
        for name, state in (("rejuvenated", InitialState.rejuvenated(32, seed=seed)),
                            ("annealed", InitialState.annealed(32, 0.6, seed=seed))):  # fmt: skip
            runs[name].append(simulate(params, state, Quasistatic(strain_end=1.2), seed=100 + seed))
    return runs, quasistatic_group(runs)


def test_padded_group_gives_each_run_its_own_flow_stress(states):
    runs, ds = states
    assert ds["n_avalanches"].min() < ds.sizes["avalanche"], "runs of different lengths: some are padded"
    flow = quasistatic_flow_stress(ds, start_fraction=0.5)
    for name, seeds in runs.items():
        alone = [float(quasistatic_flow_stress(quasistatic_group({name: [r]}))["flow_stress"][0]) for r in seeds]
        assert float(flow["flow_stress"].sel(initial_state=name)) == pytest.approx(np.mean(alone), rel=1e-12)
    assert abs(float(flow["flow_stress"].sel(initial_state="rejuvenated")) - 0.5107) < 0.03, "paper's yield stress"
    dist = avalanche_distribution(ds, "activations")
    valid = (ds["activations"] >= 1) & (ds["strain"] >= 0.5 * ds["strain"].max("avalanche"))
    np.testing.assert_array_equal(dist["samples"].values, valid.sum(("seed", "avalanche")).values)
    np.testing.assert_array_equal(dist["count"].sum("activations").values, dist["samples"].values)
    widths = np.diff(dist["activations_edges"].values)
    np.testing.assert_allclose((dist["density"] * widths).sum("activations").values, 1.0, rtol=1e-9)


def test_annealed_states_overshoot_more_than_rejuvenated_ones(states):
    """Peak of stress_before minus the run's flow stress, mean of 4 replicas: the annealed overshoot
    exceeds the rejuvenated one by more than 3 standard errors (the engine's own criterion)."""
    _, ds = states
    o = quasistatic_overshoot(ds, start_fraction=0.5)
    a, r = o.sel(initial_state="annealed"), o.sel(initial_state="rejuvenated")
    assert float(a["overshoot"] - r["overshoot"]) > 3 * np.hypot(float(a["overshoot_err"]), float(r["overshoot_err"]))
    assert (o["overshoot_n"] == 4).all() and (o["reason"] == "").all()
    assert float(a["strain_at_peak"]) < 0.6, "the annealed peak comes before the steady window"


@pytest.fixture(scope="module")
def steady64():
    """Four rejuvenated 64 x 64 lattices sheared quasistatically to strain 1.5 (about 7000 steady
    avalanches each from strain 0.5 on)."""
    params = ModelParameters(L=64)
    runs = [simulate(params, InitialState.rejuvenated(64, seed=s), Quasistatic(strain_end=1.5), seed=200 + s)
            for s in range(4)]  # fmt: skip
    return quasistatic_group({"rejuvenated": runs})


def test_quasistatic_avalanche_size_exponent_lies_in_the_range_of_2d_elastoplastic_models(steady64):
    """tau of P(S) ~ S^-tau exp(-S / S_c), steady avalanches (strain >= 0.5), 4 seeds of L = 64.

    Literature for 2D scalar EPMs with Eshelby kernels under quasistatic shear: tau ~ 1.28 (Lin,
    Lerner, Rosso & Wyart, PNAS 111, 14382 (2014)) to 1.36 (Ferrero, Martens & Barrat, PRL 113,
    248301 (2014); Budrikis, Fernandez Castellanos, Sandfeld, Zaiser & Zapperi, Nat. Commun. 8,
    15928 (2017)), from lattices up to L = 512 with finite-size scaling. At L = 64 the cutoff S_c
    is only about two decades above x_min, and the bend of the cutoff function pulls the fitted
    exponent down; this L gives tau = 1.23 +- 0.02 (bootstrap over seeds), and 1.14 to 1.24 for
    x_min from 0.02 to 0.2. Accepted: 1.10 <= tau <= 1.40, i.e. the literature range widened down by
    that finite-size bias. The number of activations (sites yielding) per avalanche is fitted as
    well: its exponent at L = 64, 1.34 +- 0.01, lies in the literature range (accepted 1.25 to 1.45).
    """
    ds = steady64
    sizes = fit_avalanches(ds, "avalanche_size", start_fraction=1 / 3, n_bootstrap=6)
    tau, err = float(sizes["exponent"][0]), float(sizes["exponent_err"][0])
    print(f"avalanche size: tau = {tau:.4f} +- {err:.4f}, S_c = {float(sizes['cutoff'][0]):.3g}, "
          f"x_min = {float(sizes['xmin'][0]):.3g}, {int(sizes['n_events'][0])} avalanches fitted")  # fmt: skip
    assert int(sizes["n_steady"][0]) > 5000 and int(sizes["n_replicas"][0]) == 4
    assert 1.10 <= tau <= 1.40, tau
    assert np.isfinite(err) and 0 < err < 0.05, "the bootstrap error over seeds is positive and finite"
    assert float(sizes["cutoff"][0]) > 10 * float(sizes["xmin"][0]), "a scaling range of more than a decade"
    counts = fit_avalanches(ds, "activations", start_fraction=1 / 3, n_bootstrap=6)
    print(f"activations: tau = {float(counts['exponent'][0]):.4f} +- {float(counts['exponent_err'][0]):.4f}")
    assert 1.25 <= float(counts["exponent"][0]) <= 1.45
    grid = np.geomspace(float(sizes["xmin"][0]), 1e3, 4000)
    share = np.trapezoid(fitted_density(sizes.isel(initial_state=0), grid), grid)
    assert share == pytest.approx(float(sizes["n_events"][0] / sizes["n_steady"][0]), rel=1e-3)


def written(fig, tmp_path, name) -> None:
    paths = save_figure(fig, tmp_path / name, formats=("png",), dpi=60)
    plt.close(fig)
    assert paths[0].suffix == ".png" and paths[0].stat().st_size > 2_000


def curves(fig) -> set[str]:
    return {a.get_gid() for ax in fig.axes for a in ax.get_children() if (a.get_gid() or "").startswith("curve:")}


def test_quasistatic_figures_have_one_curve_per_state_and_labelled_axes(states, tmp_path):
    _, ds = states
    fig = plot_quasistatic_stress_strain(ds)
    assert len(curves(fig)) == 2
    assert fig.axes[0].get_xlabel() == r"strain $\gamma$" and "epsilon_LS / sigma_LS^2" in fig.axes[0].get_ylabel()
    written(fig, tmp_path, "stress_strain")
    fit = fit_avalanches(ds, n_bootstrap=2, min_events=100)
    fig = plot_avalanche_distribution(ds, fit=fit)
    ax = fig.axes[0]
    assert len(curves(fig)) == 2 and ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == "avalanche size $S$" and ax.get_ylabel() == "$P(S)$"
    assert all(r"$\tau$ = " in t.get_text() for t in ax.get_legend().get_texts())
    written(fig, tmp_path, "sizes")
    fig = plot_avalanche_distribution(ds, "avalanche_duration")
    assert fig.axes[0].get_xlabel() == "avalanche duration $T$ [tau_LJ]"
    assert fig.axes[0].get_ylabel() == "$P(T)$ [1 / (tau_LJ)]"
    written(fig, tmp_path, "durations")
    fig = plot_quasistatic_flow_stress(quasistatic_flow_stress(ds), quasistatic_overshoot(ds))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["rejuvenated", "annealed"]
    assert fig.axes[0].get_xlabel() == "initial state"
    written(fig, tmp_path, "flow")


def test_write_figures_draws_the_quasistatic_figures_and_marks_the_flow_stress_on_the_flow_curve(states, tmp_path):
    _, ds = states
    assert {p.stem for p in write_figures(xr.DataTree.from_dict({"/quasistatic": ds}), tmp_path / "qs",
                                          formats=("png",), dpi=50)} == {  # fmt: skip
        "quasistatic_stress_strain", "avalanche_sizes", "quasistatic_flow_stress"}
    rates = np.array([1e-3, 1e-2])
    strain = np.linspace(0, 2, 41)
    stress = (0.52 + 0.5 * rates[None, :, None, None] ** 0.6) * np.ones((2, 2, 3, strain.size))
    dims = ("initial_state", "shear_rate", "seed", "strain")
    rate = xr.Dataset(
        {"stress": (dims, stress), "completed": (dims[:-1], np.ones((2, 2, 3), bool))},
        coords={"initial_state": ["rejuvenated", "annealed"], "shear_rate": rates, "seed": range(3), "strain": strain},
        attrs={"protocol": "imposed_rate"},
    )  # fmt: skip
    qs = quasistatic_flow_stress(ds)
    fig = plot_flow_curve(flow_curve(rate), quasistatic=qs)
    marks = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "-."]
    np.testing.assert_allclose(sorted(m.get_ydata()[0] for m in marks), sorted(qs["flow_stress"].values))
    assert r"quasistatic ($\dot\gamma \to 0$)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    tree = xr.DataTree.from_dict({"/imposed_rate": rate, "/quasistatic": ds})
    paths = write_figures(tree, tmp_path / "both", formats=("png",), dpi=50)
    assert {p.stem for p in paths} >= {"flow_curve", "stress_strain", "avalanche_sizes"}
    without = write_figures(xr.DataTree.from_dict({"/imposed_rate": rate}), tmp_path / "rate", formats=("png",), dpi=50)
    assert {p.stem for p in without} == {"flow_curve", "stress_strain"}, "no quasistatic group, no quasistatic figure"
