"""Analysis functions against constructed data with known answers."""

import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import xarray as xr
from epmsweep.analysis import (
    at_shear_modulus,
    creep_minimum,
    cumulative_gap,
    fit_herschel_bulkley,
    flow_curve,
    gap_distribution,
    plot_creep,
    plot_cumulative_gap,
    plot_flow_curve,
    steady_strain_rate,
    steady_stress,
    stress_overshoot,
    stuck_statistics,
    threshold_distribution,
)
from epmsweep.engine import InitialState

RNG = np.random.default_rng(42)


def rate_dataset(rates, curve, n_seeds=6, n_rec=201, noise=0.0):
    """Imposed-rate series: stress(strain) = curve(rate, strain) + noise, strain 0..8."""
    strain = np.linspace(0, 8, n_rec)
    stress = np.array([[curve(g, strain) + noise * RNG.normal(size=n_rec) for _ in range(n_seeds)] for g in rates])
    dims = ("shear_rate", "seed", "strain")  # the layout of an assembled imposed-rate group
    return xr.Dataset(
        {"stress": (dims, stress)},
        coords={
            "shear_rate": list(rates), "seed": range(n_seeds), "strain": strain,
            "time": (dims, strain / np.asarray(rates)[:, None, None] * np.ones(stress.shape)),
        },
        attrs={"protocol": "imposed_rate"},
    )  # fmt: skip


def creep_dataset(stresses, rate_of, stuck=None, n_seeds=4):
    """Creep series with strain_rate(t) = rate_of(stress, t) on log-spaced records."""
    time = np.concatenate([[0], np.geomspace(0.1, 1000, 120)])
    rates = np.array([[rate_of(s, time) for _ in range(n_seeds)] for s in stresses])
    gained = np.cumsum(rates[..., 1:] * np.diff(time), axis=-1)
    strain = np.concatenate([np.zeros(rates.shape[:-1] + (1,)), gained], axis=-1)
    dims = ("stress_imposed", "seed", "time")  # the layout of an assembled imposed-stress group
    stuck = np.zeros(rates.shape[:-1], bool) if stuck is None else np.asarray(stuck, bool)
    return xr.Dataset(
        {
            "strain_rate": (dims, rates),
            "strain": (dims, strain),
            "stuck": (dims[:2], stuck),
            "arrest_time": (dims[:2], np.where(stuck, 50.0, np.nan)),
        },
        coords={"stress_imposed": list(stresses), "seed": range(n_seeds), "time": time},
        attrs={"protocol": "imposed_stress"},
    )


def test_steady_stress_mean_and_error():
    """Steady value 0.6 with white noise 0.05: 101 window points x 6 seeds; sem of the seed means."""
    ds = rate_dataset([1e-3], lambda g, e: 0.6 + 0 * e, noise=0.05)
    st = steady_stress(ds).squeeze()
    per_seed_sd = 0.05 / np.sqrt(101)
    assert float(st.stress) == pytest.approx(0.6, abs=4 * per_seed_sd / np.sqrt(6))
    assert float(st.stress_err) == pytest.approx(per_seed_sd / np.sqrt(6), rel=0.6)
    assert int(st.stress_n) == 6
    # a linear drift of 0.01 per unit strain: the last two quarters of the window (strain 4-6, 6-8) differ by 0.02
    drifting = steady_stress(rate_dataset([1e-3], lambda g, e: 0.5 + 0.01 * e)).squeeze()
    assert float(drifting.stress_drift) == pytest.approx(0.02, rel=0.05)


def test_herschel_bulkley_fit_recovers_known_parameters():
    truth = (0.51, 1.3, 0.78)
    rates = np.geomspace(1e-4, 2e-2, 12)
    err = np.full(rates.size, 0.003)
    stress = truth[0] + truth[1] * rates ** truth[2] + err * RNG.normal(size=rates.size)
    flow = xr.Dataset(
        {
            "shear_rate": ("point", rates),
            "stress": ("point", stress),
            "stress_err": ("point", err),
            "shear_rate_err": ("point", np.zeros_like(rates)),
        }
    )
    fit = fit_herschel_bulkley(flow)
    for name, true in zip(("sigma_y", "a", "n"), truth, strict=True):
        assert abs(float(fit[name]) - true) < 4 * float(fit[f"{name}_err"]), (name, float(fit[name]), true)
    assert int(fit.n_points) == 12 and 0.2 < float(fit.chi2_reduced) < 3.0
    np.testing.assert_allclose(np.sqrt(np.diag(fit.covariance)), [fit.sigma_y_err, fit.a_err, fit.n_err])
    few = fit_herschel_bulkley(flow.isel(point=slice(0, 3)))
    assert np.isnan(float(few.sigma_y)) and "need >= 4" in str(few.reason.values)


def test_flow_curve_joins_both_protocols():
    def inverse_hb(s):  # of Sigma = 0.5 + 1.2 gdot^0.8
        return ((s - 0.5) / 1.2) ** (1 / 0.8)

    rate = rate_dataset([1e-3, 1e-2], lambda g, e: 0.5 + 1.2 * g**0.8 + 0 * e)
    creep = creep_dataset(
        [0.55, 0.6], lambda s, t: inverse_hb(s) * np.ones_like(t), stuck=np.array([[0, 0, 1, 0], [0, 0, 0, 0]])
    )
    flow = flow_curve(rate, creep)
    assert list(flow.protocol.values) == ["imposed_rate"] * 2 + ["imposed_stress"] * 2
    np.testing.assert_allclose(flow.shear_rate[2:], [inverse_hb(0.55), inverse_hb(0.6)], rtol=1e-6)
    np.testing.assert_allclose(flow.stress[:2], 0.5 + 1.2 * np.array([1e-3, 1e-2]) ** 0.8, rtol=1e-12)
    np.testing.assert_allclose(flow.stuck_fraction[2:], [0.25, 0.0])


def test_flow_curve_at_another_shear_modulus():
    """Sigma = 0.5 + 1.2 gdot^0.8 at mu = 15 is Sigma = 0.5 + 1.2 (3 gdot)^0.8 at mu = 5."""
    g = np.geomspace(1e-4, 2e-2, 12)
    flow = flow_curve(rate_dataset(list(g), lambda x, strain: 0.5 + 1.2 * x**0.8 + 0 * strain, noise=1e-3))
    at5 = at_shear_modulus(flow, 5.0, 15.0)
    np.testing.assert_allclose(at5.shear_rate, 3 * flow.shear_rate, rtol=1e-15)
    np.testing.assert_array_equal(at5.stress, flow.stress)
    fit = fit_herschel_bulkley(at5, max_rate=1.0)
    assert float(fit.n) == pytest.approx(0.8, abs=0.02) and float(fit.a) == pytest.approx(1.2 / 3**0.8, rel=0.05)
    with pytest.raises(ValueError, match="moduli"):
        at_shear_modulus(flow, 0.0, 15.0)


def test_histograms_are_normalised_with_correct_means():
    thr = RNG.weibull(1.5, size=(2, 3, 4, 16, 16)) * 0.57
    stress = RNG.normal(0.3, 0.1, thr.shape)
    dims = ("shear_rate", "seed", "snapshot_strain", "y", "x")
    ds = xr.Dataset({"threshold": (dims, thr), "local_stress": (dims, stress)}, coords={"shear_rate": [1e-3, 1e-4]})
    pa = threshold_distribution(ds, bins=np.linspace(0, 4, 201))
    width = np.diff(pa.threshold_edges.values)
    np.testing.assert_allclose((pa.density * width).sum("threshold"), 1.0, rtol=1e-12)
    np.testing.assert_allclose(pa["mean"].values, thr.reshape(2, -1).mean(1))
    px = gap_distribution(ds, bins=np.linspace(-2, 4, 301))
    np.testing.assert_allclose(px["mean"].values, (thr - stress).reshape(2, -1).mean(1))


def test_cumulative_gap_of_initial_state():
    state = InitialState.rejuvenated(32, seed=1)
    c = cumulative_gap(state, x=np.array([0.0, 0.4464, 10.0]))
    assert c.values[0] == 0.0 and c.values[-1] == 1.0
    assert c.values[1] == pytest.approx(0.5, abs=0.05)  # the Weibull median, 1024 sites
    shifted = cumulative_gap(state, x=np.array([0.4464]), stress=0.2)
    assert shifted.values[0] > c.values[1]


def test_overshoot_of_constructed_curve():
    """Elastic rise to 0.55 plus a bump peaking at strain 0.2 whose height grows with the rate."""

    def curve(g, e):
        return 0.55 * (1 - np.exp(-e / 0.02)) + (g / 1e-2) * 0.1 * (e / 0.2) * np.exp(1 - e / 0.2)

    ds = rate_dataset([1e-3, 1e-2], curve, n_rec=801)
    ov = stress_overshoot(ds)
    assert float(ov.overshoot.sel(shear_rate=1e-2)) > float(ov.overshoot.sel(shear_rate=1e-3)) > 0
    assert float(ov.overshoot.sel(shear_rate=1e-2)) == pytest.approx(0.1, abs=0.01)
    assert float(ov.strain_at_peak.sel(shear_rate=1e-2)) == pytest.approx(0.2, abs=0.03)


def test_creep_minimum_and_stuck_fraction():
    def rate(s, t):
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 0.01 * (t / 10.0) ** -0.7 + 0.005 * (t > 100), 0.0)

    ds = creep_dataset([0.6], rate, stuck=np.array([[0, 1, 1, 0]]))
    m = creep_minimum(ds).squeeze()
    assert float(m.minimum_time) == pytest.approx(100, rel=0.1)
    assert 100 <= float(m.fluidisation_time) <= 130
    assert int(m.n_minimum) == 2 and int(m.n_stuck) == 2 and str(m.reason.values) == ""  # the flowing replicas only
    assert float(m.minimum_time_err) == 0.0  # identical flowing replicas
    st = stuck_statistics(ds).squeeze()
    assert float(st.stuck_fraction) == 0.5 and float(st.mean_arrest_time) == 50.0
    assert float(steady_strain_rate(ds).stuck_fraction.squeeze()) == 0.5


def test_plots_have_labeled_axes(tmp_path):
    matplotlib.use("Agg")
    rate = rate_dataset(np.geomspace(1e-3, 1e-2, 4), lambda g, e: 0.5 + 1.2 * g**0.8 + 0 * e, noise=0.01)
    flow = flow_curve(rate)
    fig = plot_flow_curve(flow, fit_herschel_bulkley(flow))
    ax = fig.axes[0]
    assert "shear rate" in ax.get_xlabel() and "stress" in ax.get_ylabel() and ax.get_xscale() == "log"
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    fig = plot_creep(creep_dataset([0.6], lambda s, t: 0.01 + 0 * t))
    assert fig.axes[0].get_yscale() == "log" and "time" in fig.axes[0].get_xlabel()
    states = [InitialState.annealed(32, shift, seed=0, name=f"s{shift}") for shift in (0.0, 0.3)]
    fig = plot_cumulative_gap(states, stress=0.65)
    lines = fig.axes[0].get_lines()
    assert fig.axes[0].get_ylabel() == "C(X)" and len(lines) == 3
    # the better annealed state has fewer sites below any X
    x = 0.5
    low = [np.interp(x, line.get_xdata(), line.get_ydata()) for line in lines[:2]]
    assert low[0] > low[1]


def test_stuck_and_flowing_replicas_never_mixed():
    """Two flowing replicas at 0.01, two stuck at 0 after t = 50: the late rate is that of the flowing ones."""

    def rate(s, t):
        return np.full_like(t, 0.01)

    ds = creep_dataset([0.6, 0.65], rate, stuck=np.array([[0, 1, 1, 0], [1, 1, 1, 1]]))
    stuck_rate = ds["strain_rate"].where(ds.time < 50, 0.0)
    ds["strain_rate"] = ds["strain_rate"].where(~ds.stuck, stuck_rate)
    gained = (ds["strain_rate"].isel(time=slice(1, None)) * ds.time.diff("time")).cumsum("time")
    ds["strain"] = xr.concat([xr.zeros_like(ds["strain"].isel(time=0)), gained], "time").transpose(*ds["strain"].dims)
    sr = steady_strain_rate(ds)
    assert float(sr.strain_rate.sel(stress_imposed=0.6)) == pytest.approx(0.01, rel=1e-9)
    assert int(sr.n_flowing.sel(stress_imposed=0.6)) == 2 and int(sr.n_stuck.sel(stress_imposed=0.6)) == 2
    assert float(sr.arrest_time.sel(stress_imposed=0.6)) == 50.0
    assert np.isnan(float(sr.strain_rate.sel(stress_imposed=0.65)))  # nobody flows: no rate, not 0
    assert not bool(sr.steady.sel(stress_imposed=0.65))
    flow = flow_curve(imposed_stress=ds)
    assert flow.attrs["excluded_stuck"] == 1 and bool(flow.all_stuck[1]) and np.isnan(float(flow.stress[1]))
    assert float(flow.shear_rate[0]) == pytest.approx(0.01) and int(flow.n_stuck[0]) == 2
    st = stuck_statistics(ds)
    assert list(st.n_stuck.values) == [2, 4] and list(st.n_flowing.values) == [2, 0]


def test_creep_drift_is_detected_and_excluded():
    """Rate still decaying as t^-1 over the window (500-1000): the halves differ by far more than their error."""

    def decaying(s, t):
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 0.01 * (1 + RNG.normal(0, 0.02, t.size)) * (t / 10) ** -1.0, 0.0)

    def steady(s, t):
        return 0.004 * (1 + RNG.normal(0, 0.02, t.size))

    ds = xr.concat([creep_dataset([0.55], decaying), creep_dataset([0.6], steady)], "stress_imposed")
    sr = steady_strain_rate(ds)
    assert list(sr.steady.values) == [False, True]
    assert float(sr.strain_rate_drift[0]) < -3 * float(sr.strain_rate_drift_err[0])
    flow = flow_curve(imposed_stress=ds)
    assert flow.attrs["excluded_unsteady"] == 1 and np.isnan(float(flow.shear_rate[0]))
    assert np.isfinite(float(flow.shear_rate[1]))
    kept = flow_curve(imposed_stress=ds, keep_unsteady=True)
    assert kept.attrs["excluded_unsteady"] == 0 and kept.attrs["unsteady_points"] == 1
    assert np.isfinite(float(kept.shear_rate[0])) and not bool(kept.steady[0])


def test_imposed_rate_drift_flags_the_point():
    drifting = steady_stress(rate_dataset([1e-3, 2e-3], lambda g, e: 0.5 + (g == 1e-3) * 0.01 * e, noise=0.001))
    assert list(drifting.steady.values) == [False, True]


def test_herschel_bulkley_over_extra_dims_recovers_each_curve():
    """Two initial states x two model values, each with its own (Sigma_Y, A, n); the fit keeps both dims."""
    truth = {("E1", 1.0): (0.50, 1.2, 0.8), ("E1", 2.0): (0.52, 0.9, 0.7),
             ("E2", 1.0): (0.48, 1.5, 0.9), ("E2", 2.0): (0.55, 1.1, 0.6)}  # fmt: skip
    rates = np.geomspace(1e-4, 2e-2, 10)
    err = 0.002
    stress = np.array([
        [[s + a * g**n + err * RNG.normal() for g in rates] for (s, a, n) in (truth[(e, 1.0)], truth[(e, 2.0)])]
        for e in ("E1", "E2")
    ])  # fmt: skip
    dims = ("initial_state", "tau_res", "point")
    flow = xr.Dataset(
        {
            "shear_rate": (dims, np.broadcast_to(rates, stress.shape)),
            "stress": (dims, stress),
            "stress_err": (dims, np.full(stress.shape, err)),
            "shear_rate_err": (dims, np.zeros(stress.shape)),
            "steady": (dims, np.ones(stress.shape, bool)),
        },
        coords={"initial_state": ["E1", "E2"], "tau_res": [1.0, 2.0]},
    )
    fit = fit_herschel_bulkley(flow)
    assert fit.sigma_y.dims == ("initial_state", "tau_res") and fit.covariance.shape == (2, 2, 3, 3)
    for (state, tau), values in truth.items():
        p = fit.sel(initial_state=state, tau_res=tau)
        for name, true in zip(("sigma_y", "a", "n"), values, strict=True):
            assert abs(float(p[name]) - true) < 5 * float(p[f"{name}_err"]), (state, tau, name)
        assert int(p.n_points) == 10 and str(p.reason.values) == ""
    # points flagged unsteady are left out unless asked for
    flow["steady"][0, 0, :7] = False
    part = fit_herschel_bulkley(flow)
    assert np.isnan(float(part.sigma_y[0, 0])) and "3 usable points" in str(part.reason.values[0, 0])
    assert int(fit_herschel_bulkley(flow, include_unsteady=True).n_points[0, 0]) == 10


def test_no_interior_minimum_or_peak_gives_nan_with_a_reason():
    def decaying(s, t):
        return 0.01 * np.exp(-t / 2000)  # monotonic: the lowest rate is the last record

    def rising(s, t):
        return 0.001 + 0.01 * t / 1000

    ds = xr.concat([creep_dataset([0.55], decaying), creep_dataset([0.6], rising)], "stress_imposed")
    m = creep_minimum(ds)
    assert np.all(np.isnan(m.minimum_time.values)) and np.all(np.isnan(m.depth.values))
    assert list(m.n_minimum.values) == [0, 0]
    assert all("no interior minimum" in r for r in m.reason.values)
    stuck = creep_minimum(creep_dataset([0.5], decaying, stuck=np.ones((1, 4))))
    assert "every replica stuck" in str(stuck.reason.values[0])
    rising_stress = rate_dataset([1e-3], lambda g, e: 0.5 * e / 8)
    ov = stress_overshoot(rising_stress).squeeze()
    assert np.isnan(float(ov.overshoot)) and "first or last" in str(ov.reason.values)


def test_creep_without_arrest_times_as_particle_runs():
    ds = creep_dataset([0.6], lambda s, t: np.full_like(t, 0.01), stuck=np.array([[0, 0, 0, 1]]))
    ds = ds.drop_vars("arrest_time")
    sr = steady_strain_rate(ds).squeeze()
    assert int(sr.n_stuck) == 1 and np.isnan(float(sr.arrest_time))
    assert np.isnan(float(stuck_statistics(ds).mean_arrest_time.squeeze()))


def test_every_units_attribute_of_the_analysis_parses():
    """Analysis outputs carry units a units library reads (the HB prefactor, whose unit depends on the
    fitted exponent, says so in a comment instead)."""
    from epmsweep.engine.units import unit_registry

    ureg = unit_registry()
    rates = list(np.geomspace(1e-3, 2e-2, 6))
    rate = rate_dataset(rates, lambda g, e: 0.5 + 1.2 * g**0.8 + 0 * e, noise=1e-3)
    creep = creep_dataset([0.55, 0.6], lambda s, t: 1e-3 * (1 + t / (1 + t)), stuck=np.array([[0, 0, 1, 0], [0] * 4]))
    thr = RNG.weibull(1.5, size=(1, 2, 2, 8, 8)) * 0.57
    fields = xr.Dataset({"threshold": (("shear_rate", "seed", "snapshot_strain", "y", "x"), thr),
                         "local_stress": (("shear_rate", "seed", "snapshot_strain", "y", "x"), 0.5 * thr)})  # fmt: skip
    flow = flow_curve(rate, creep)
    outputs = [
        steady_stress(rate), steady_strain_rate(creep), flow, fit_herschel_bulkley(flow), stress_overshoot(rate),
        creep_minimum(creep), stuck_statistics(creep), threshold_distribution(fields), gap_distribution(fields),
    ]  # fmt: skip
    parsed = 0
    for ds in outputs:
        for name, var in ds.variables.items():
            if "units" in var.attrs:
                ureg.parse_units(var.attrs["units"])
                parsed += 1
            elif name in ("a", "a_err"):
                assert "tau_LJ^n" in var.attrs["comment"]
    assert parsed > 30


def test_analysis_without_figures_does_not_load_matplotlib():
    """The sweep, its assembly's summary and the analysis functions import without matplotlib; the
    plotting functions load it on first use."""
    code = (
        "import sys; import epmsweep.sweep, epmsweep.calibrate; from epmsweep.analysis import steady_stress\n"
        "before = 'matplotlib' in sys.modules; from epmsweep.analysis import plot_flow_curve\n"
        "print(before, 'matplotlib' in sys.modules, callable(plot_flow_curve))"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).split() == ["False", "True", "True"]
