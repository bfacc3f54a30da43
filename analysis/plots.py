"""Figures (matplotlib): each function returns a Figure with labeled axes and units."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from epmsweep.engine import InitialState
from epmsweep.engine.units import RATE, STRESS, TIME
from matplotlib.figure import Figure

from .distributions import cumulative_gap, gap_distribution, threshold_distribution
from .flow_curve import HerschelBulkleyFit, fit_herschel_bulkley, flow_curve
from .steady_state import REPLICA_DIM, record_dim, snapshot_dim

STRESS_LABEL = rf"stress $\Sigma$ [{STRESS}]"
RATE_LABEL = rf"shear rate $\dot\gamma$ [{RATE}]"
TIME_LABEL = rf"time $t$ [{TIME}]"


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)


def _selections(da: xr.DataArray, keep: set[str]):
    """Label and selector of every combination of the dims of ``da`` not in ``keep``."""
    dims = [d for d in da.dims if d not in keep]
    for values in itertools.product(*(range(da.sizes[d]) for d in dims)):
        sel = dict(zip(dims, values, strict=True))
        label = ", ".join(f"{d}={_fmt(da[d].values[i])}" if d in da.coords else f"{d}={i}" for d, i in sel.items())
        yield label, sel


def plot_flow_curve(flow: xr.Dataset, fits: dict[str, HerschelBulkleyFit] | None = None) -> Figure:
    """Steady stress vs shear rate; open symbols imposed rate, filled symbols creep; HB fits dashed."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.85, 8))
    for (label, sel), color in zip(_selections(flow["stress"], {"point"}), colors, strict=False):
        f = flow.isel(sel)
        for protocol, face in (("imposed_rate", "none"), ("imposed_stress", color)):
            p = f.where(f.protocol == protocol, drop=True)
            if p.sizes.get("point", 0):
                ax.errorbar(
                    p.shear_rate, p.stress, xerr=p.shear_rate_err, yerr=p.stress_err, fmt="o", mfc=face, color=color,
                    label=f"{label} {protocol.replace('_', ' ')}".strip(),
                )
        if fits and label in fits:
            fit = fits[label]
            g = np.geomspace(np.nanmin(f.shear_rate.where(f.shear_rate > 0)), fit.max_rate, 100)
            ax.plot(g, fit(g), "--", color=color, label=rf"HB: $\Sigma_Y$={fit.sigma_y:.3f}, n={fit.n:.2f}")
    ax.set(xscale="log", xlabel=RATE_LABEL, ylabel=STRESS_LABEL, title="flow curve")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _mean_curves(ds: xr.Dataset, x: str, y: str, loglog: bool = False) -> tuple[Figure, plt.Axes]:
    """One replica-averaged curve y(x) per sweep point; on log axes, non-positive values are dropped."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    mean = ds[[x, y]].mean(REPLICA_DIM)
    for label, sel in _selections(mean[y], {record_dim(ds)}):
        m = mean.isel(sel)
        if loglog:
            m = m.where((m[x] > 0) & (m[y] > 0))
        ax.plot(m[x], m[y], label=label)
    if loglog:
        ax.set(xscale="log", yscale="log")
    ax.legend(fontsize=7)
    return fig, ax


def plot_stress_strain(ds: xr.Dataset) -> Figure:
    """Replica-averaged stress-strain curves of imposed-rate runs, one line per rate."""
    fig, ax = _mean_curves(ds, "strain", "stress")
    ax.set(xlabel=r"strain $\gamma$", ylabel=STRESS_LABEL, title="stress-strain (mean over replicas)")
    fig.tight_layout()
    return fig


def plot_creep(ds: xr.Dataset) -> Figure:
    """Replica-averaged creep curves gdot(t) on log-log axes, one line per imposed stress."""
    fig, ax = _mean_curves(ds, "time", "strain_rate", loglog=True)
    ax.set(xlabel=TIME_LABEL, ylabel=RATE_LABEL, title="creep")
    fig.tight_layout()
    return fig


def plot_distributions(ds: xr.Dataset) -> Figure:
    """P_a(sigma_th) and P(x) from the snapshots, one line per sweep point."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for dist, ax, xlabel in (
        (threshold_distribution(ds), axes[0], rf"threshold $\sigma_{{th}}$ [{STRESS}]"),
        (gap_distribution(ds), axes[1], rf"gap $x = \sigma_{{th}} - \sigma$ [{STRESS}]"),
    ):
        name = "threshold" if "threshold" in dist.dims else "gap"
        for label, sel in _selections(dist["density"], {name}):
            d = dist.isel(sel)
            ax.plot(d[name], d.density, label=f"{label} (mean {float(d['mean']):.3f})")
        ax.set(xlabel=xlabel, ylabel="probability density")
        ax.legend(fontsize=7)
    axes[0].set_title(r"$P_a(\sigma_{th})$")
    axes[1].set_title("$P(x)$")
    fig.tight_layout()
    return fig


def plot_cumulative_gap(states: list[InitialState], stress: float | None = None) -> Figure:
    """C(X) of initial states; a dotted line marks an imposed stress (sites left of it yield at once)."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for state in states:
        c = cumulative_gap(state)
        ax.plot(c.gap, c, label=f"{state.name} (mu = {state.shear_modulus:g})")
    if stress is not None:
        ax.axvline(stress, color="gray", ls=":", label=f"Sigma_0 = {stress:g}")
    ax.set(xlabel=f"gap X [{STRESS}]", ylabel="C(X)", title="cumulative gap distribution of the initial states")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_figures(tree: xr.DataTree, outdir: Path) -> list[Path]:
    """Draw every figure the assembled data allow and write them as PNG into ``outdir``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rate = tree["imposed_rate"].to_dataset() if "imposed_rate" in tree.children else None
    creep = tree["imposed_stress"].to_dataset() if "imposed_stress" in tree.children else None
    figures: dict[str, Figure] = {}
    flow = flow_curve(rate, creep)
    fits = {}
    for label, sel in _selections(flow["stress"], {"point"}):
        try:
            fits[label] = fit_herschel_bulkley(flow.isel(sel))
        except (ValueError, RuntimeError):
            continue  # too few points below the validity limit for a fit
    figures["flow_curve"] = plot_flow_curve(flow, fits)
    if rate is not None:
        figures["stress_strain"] = plot_stress_strain(rate)
        if snapshot_dim(rate):
            figures["distributions"] = plot_distributions(rate)
    if creep is not None:
        figures["creep"] = plot_creep(creep)
    paths = []
    for name, fig in figures.items():
        path = outdir / f"{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
