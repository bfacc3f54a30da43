"""Every plot renders every curve (1, 9 and 24 curves; two extra sweep dims as facets) and writes PNG + PDF."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from epmsweep.analysis import (  # noqa: E402
    fit_herschel_bulkley,
    flow_curve,
    plot_creep,
    plot_cumulative_gap,
    plot_distributions,
    plot_flow_curve,
    plot_stress_strain,
    save_figure,
    write_figures,
)
from epmsweep.engine import InitialState  # noqa: E402

RNG = np.random.default_rng(7)
EXTRA = {"initial_state": ["E1", "E2"], "tau_res": [1.0, 2.0]}


def _extra(two_dims: bool) -> dict:
    return EXTRA if two_dims else {}


def rate_group(n_rates: int, two_dims: bool = False, n_seeds: int = 3, snapshots: bool = False) -> xr.Dataset:
    """Imposed-rate group: HB steady stress plus noise, optionally with small snapshot fields."""
    extra = _extra(two_dims)
    rates = np.geomspace(1e-4, 5e-2, n_rates)
    strain = np.linspace(0, 4, 81)
    shape = [len(v) for v in extra.values()] + [n_rates, n_seeds, strain.size]
    steady = 0.5 + 1.2 * rates**0.8
    stress = steady[:, None, None] * (1 - np.exp(-strain / 0.05)) + 0.005 * RNG.normal(size=shape)
    dims = (*extra, "shear_rate", "seed", "strain")
    ds = xr.Dataset(
        {"stress": (dims, stress), "completed": (dims[:-1], np.ones(shape[:-1], bool))},
        coords={**extra, "shear_rate": rates, "seed": range(n_seeds), "strain": strain},
        attrs={"protocol": "imposed_rate"},
    )
    if snapshots:
        fshape = shape[:-1] + [2, 8, 8]
        fdims = dims[:-1] + ("snapshot_strain", "y", "x")
        thr = RNG.weibull(1.5, size=fshape) * 0.57 + 0.2
        ds["threshold"] = (fdims, thr)
        ds["local_stress"] = (fdims, RNG.normal(0.4, 0.1, fshape))
        ds = ds.assign_coords(snapshot_strain=[3.0, 4.0])
    return ds


def creep_group(n_stresses: int, two_dims: bool = False, n_seeds: int = 4) -> xr.Dataset:
    """Creep group: the flowing replicas decay to a steady rate, every other replica of odd stresses is stuck."""
    extra = _extra(two_dims)
    stresses = np.linspace(0.52, 0.8, n_stresses)
    time = np.concatenate([[0], np.geomspace(0.1, 1000, 60)])
    shape = [len(v) for v in extra.values()] + [n_stresses, n_seeds, time.size]
    late = ((stresses - 0.5) / 1.2) ** (1 / 0.8)
    rate = late[:, None, None] * (1 + 3 * np.exp(-time / 20)) * np.exp(0.05 * RNG.normal(size=shape))
    stuck = np.zeros(shape[:-1], bool)
    stuck[..., 1::2, ::2] = True  # odd stresses: half of the replicas stuck
    arrest = np.where(stuck, 30.0 + RNG.uniform(0, 10, size=stuck.shape), np.nan)
    rate = np.where(stuck[..., None] & (time > arrest[..., None]), 0.0, rate)
    strain = np.concatenate([np.zeros(shape[:-1] + [1]), np.cumsum(rate[..., 1:] * np.diff(time), axis=-1)], axis=-1)
    dims = (*extra, "stress_imposed", "seed", "time")
    return xr.Dataset(
        {
            "strain_rate": (dims, rate),
            "strain": (dims, strain),
            "stuck": (dims[:-1], stuck),
            "arrest_time": (dims[:-1], arrest),
            "completed": (dims[:-1], np.ones(shape[:-1], bool)),
        },
        coords={**extra, "stress_imposed": stresses, "seed": range(n_seeds), "time": time},
        attrs={"protocol": "imposed_stress"},
    )


def curves(fig) -> set[str]:
    """The curve ids drawn (``gid`` ``curve:<n>`` of every artist of a curve)."""
    ids = set()
    for ax in fig.axes:
        for artist in ax.get_children():
            gid = artist.get_gid() or ""
            if gid.startswith("curve:"):
                ids.add(gid)
    return ids


def written(fig, tmp_path, name, dpi=72):
    paths = save_figure(fig, tmp_path / name, dpi=dpi)  # PNG and PDF (write_figures: 300 dpi)
    plt.close(fig)
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    assert all(p.stat().st_size > 2_000 for p in paths)
    return paths


CASES = [(1, False), (9, False), (24, False), (3, True)]


@pytest.mark.parametrize(("n", "two_dims"), CASES)
def test_stress_strain_draws_every_curve(n, two_dims, tmp_path):
    fig = plot_stress_strain(rate_group(n, two_dims))
    facets = 4 if two_dims else 1
    assert len(curves(fig)) == n * facets
    assert len([ax for ax in fig.axes if ax.get_xlabel() or ax.get_ylabel()]) >= 1
    assert "epsilon_LS / sigma_LS^2" in fig.axes[0].get_ylabel()
    written(fig, tmp_path, f"ss{n}{two_dims}")


@pytest.mark.parametrize(("n", "two_dims"), CASES)
def test_creep_draws_every_curve_and_stuck_runs_apart(n, two_dims, tmp_path):
    ds = creep_group(n, two_dims)
    fig = plot_creep(ds)
    facets = 4 if two_dims else 1
    assert len(curves(fig)) == n * facets
    crosses = [line for ax in fig.axes for line in ax.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == int(ds["stuck"].sum())  # one mark per stuck run, at its arrest time
    notes = [ax.get_title() for ax in fig.axes]
    assert any(f"of {n * 4} runs stuck" in t for t in notes)
    written(fig, tmp_path, f"creep{n}{two_dims}")


@pytest.mark.parametrize(("n", "two_dims"), CASES)
def test_flow_curve_draws_every_curve(n, two_dims, tmp_path):
    """Hue: one curve per extra value (here initial_state x tau_res facets, or the 'model' axis)."""
    if two_dims:
        flow = flow_curve(rate_group(6, True), creep_group(4, True))
        expected = 4  # initial_state is the hue, tau_res the columns: 2 x 2 curves
    else:
        groups = [rate_group(6).expand_dims(model=[k]) for k in range(n)]
        flow = flow_curve(xr.concat(groups, "model"))
        expected = n
    fit = fit_herschel_bulkley(flow)
    fig = plot_flow_curve(flow, fit)
    assert len(curves(fig)) == expected
    dashed = [line for ax in fig.axes for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == int(np.isfinite(fit["sigma_y"]).sum())
    ax = fig.axes[0]
    assert "shear rate" in ax.get_xlabel() and ax.get_xscale() == "log"
    assert [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((0.92,) * 3)]  # beyond-validity shading
    written(fig, tmp_path, f"flow{n}{two_dims}")


@pytest.mark.parametrize(("n", "two_dims"), CASES)
def test_distributions_draw_every_curve_over_p_d(n, two_dims, tmp_path):
    fig = plot_distributions(rate_group(n, two_dims, snapshots=True))
    rows = 4 if two_dims else 1
    assert len(curves(fig)) == n * rows
    pa_axes = fig.axes[0 : 2 * rows : 2]
    for ax in pa_axes:
        p_d = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(p_d) == 1 and all(p_d[0].get_zorder() < line.get_zorder() for line in ax.get_lines()[1:])
    written(fig, tmp_path, f"dist{n}{two_dims}")


@pytest.mark.parametrize("n", [1, 9, 24])
def test_cumulative_gap_draws_every_state(n, tmp_path):
    states = [InitialState.annealed(8, 0.02 * k, seed=k, name=f"s{k}") for k in range(n)]
    fig = plot_cumulative_gap(states, stress=0.6)
    assert len(curves(fig)) == n
    colors = {tuple(line.get_color()) for ax in fig.axes for line in ax.get_lines() if line.get_gid()}
    assert len(colors) == n  # distinguishable: no colour used twice
    written(fig, tmp_path, f"cg{n}")


def test_many_curves_get_distinct_colours():
    fig = plot_stress_strain(rate_group(24))
    colors = {tuple(np.round(line.get_color(), 4)) for line in fig.axes[0].get_lines()}
    assert len(colors) == 24
    plt.close(fig)


def test_write_figures_writes_print_png_and_pdf_of_every_figure(tmp_path):
    tree = xr.DataTree.from_dict(
        {"/imposed_rate": rate_group(4, snapshots=True), "/imposed_stress": creep_group(3)}
    )
    paths = write_figures(tree, tmp_path / "figs")
    names = {p.stem for p in paths}
    assert names == {"flow_curve", "stress_strain", "distributions", "creep"}
    assert sorted(p.suffix for p in paths) == [".pdf"] * 4 + [".png"] * 4
    png = plt.imread(tmp_path / "figs" / "creep.png")
    assert png.shape[1] >= 4.4 * 300  # one 4.4-inch panel at 300 dpi
    svg = write_figures(tree, tmp_path / "svg", formats=("svg",), dpi=72)
    assert len(svg) == 4 and all(p.read_text().lstrip().startswith("<?xml") for p in svg)
