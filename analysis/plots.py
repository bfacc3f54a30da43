"""Figures (matplotlib) for talks and papers: every function returns a Figure.

Conventions shared by every plot:

- one curve per value of the ``hue`` dimension (by default the protocol's sweep dimension:
  ``shear_rate``, ``stress_imposed``), with no cap on their number: up to 8 curves a legend with
  concise labels (the legend title carries the symbol and the units), beyond that a colour bar;
  ordered numeric values take a sequential colour map sampled over its whole range, labels a
  qualitative one;
- every further sweep dimension becomes a facet: the first one columns, the second rows (and any
  more are folded into the rows); facet titles name the value and its units;
- time series are the mean over replicas with a band of +- one standard error;
- imposed rates above the model's validity limit (``MODEL_VALIDITY_RATE``) are labelled
  "(beyond model)"; the flow curve shades them;
- every drawn curve's artists carry the ``gid`` ``"curve:<n>"`` (one n per curve and facet), so
  that the number of curves of a figure can be checked.

Units come from the ``units`` attributes of the data (the ``engine.units`` vocabulary).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from epmsweep.engine import InitialState
from epmsweep.engine.thresholds import ThresholdDistribution
from epmsweep.engine.units import RATE, STRESS, TIME
from epmsweep.engine.variables import PARAMETER_UNITS, VARIABLES
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .avalanches import (
    avalanche_distribution,
    fit_avalanches,
    fitted_density,
    quasistatic_flow_stress,
    quasistatic_overshoot,
    quasistatic_stress_strain,
)
from .distributions import cumulative_gap, gap_distribution, threshold_distribution
from .flow_curve import MODEL_VALIDITY_RATE, fit_herschel_bulkley, flow_curve
from .steady_state import REPLICA_DIM, arrest_times, completed, record_dim, snapshot_dim

STRESS_LABEL = rf"stress $\Sigma$ [{STRESS}]"
RATE_LABEL = rf"shear rate $\dot\gamma$ [{RATE}]"
TIME_LABEL = rf"time $t$ [{TIME}]"
SYMBOLS = {
    "shear_rate": r"$\dot\gamma$",
    "stress_imposed": r"$\Sigma_0$",
    "initial_state": "initial state",
    "shear_modulus": r"$\mu$",
}
MAX_LEGEND = 8
"""Above this many curves the hue is shown by a colour bar instead of legend entries."""
FORMATS = ("png", "pdf")
DPI = 300
PANEL = (4.4, 3.4)
"""Width and height of one facet [inch]."""


def _units(da: xr.DataArray, dim: str) -> str | None:
    if dim in da.coords and "units" in da[dim].attrs:
        return da[dim].attrs["units"]
    if dim in VARIABLES:
        return VARIABLES[dim].units
    return PARAMETER_UNITS.get(dim)


def _title(da: xr.DataArray, dim: str) -> str:
    """Symbol and units of a dim, e.g. ``$\\dot\\gamma$ [1 / tau_LJ]``."""
    units = _units(da, dim)
    name = SYMBOLS.get(dim, dim.replace("_", " "))
    return f"{name} [{units}]" if units not in (None, "1") else name


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)


def _facet_label(da: xr.DataArray, sel: dict[str, int]) -> str:
    parts = []
    for dim, i in sel.items():
        value = da[dim].values[i] if dim in da.coords else i
        units = _units(da, dim)
        unit = f" [{units}]" if units not in (None, "1") else ""
        parts.append(f"{SYMBOLS.get(dim, dim.replace('_', ' '))} = {_fmt(value)}{unit}")
    return ", ".join(parts)


def _combinations(da: xr.DataArray, dims: Iterable[str]) -> list[dict[str, int]]:
    dims = list(dims)
    return [dict(zip(dims, idx, strict=True)) for idx in itertools.product(*(range(da.sizes[d]) for d in dims))]


def _colors(values: np.ndarray) -> tuple[np.ndarray, mcolors.Colormap | None, mcolors.Normalize | None]:
    """Distinguishable colours for any number of curves: a sequential map over ordered numbers (log
    scale for positive values spanning more than a decade), a qualitative one for labels."""
    n = len(values)
    numeric = n > 0 and np.issubdtype(np.asarray(values).dtype, np.number)
    if numeric and n > 1:
        v = np.asarray(values, float)
        log = bool(np.all(v > 0) and v.max() / v.min() >= 3)
        norm = mcolors.LogNorm(v.min(), v.max()) if log else mcolors.Normalize(v.min(), v.max())
        cmap = plt.get_cmap("viridis")
        return cmap(0.05 + 0.85 * norm(v)), cmap, norm
    if n <= 10:
        return plt.get_cmap("tab10")(np.arange(n) % 10), None, None
    return plt.get_cmap("turbo")(np.linspace(0.05, 0.95, n)), None, None


class _Layout:
    """Hue, column and row dims of ``da`` (whose own axes are ``keep``) and the facet grid."""

    def __init__(self, da: xr.DataArray, keep: set[str], hue: str | None, default_hue: tuple[str, ...],
                 col: str | None = None, row: str | None = None, ncols_per_facet: int = 1):  # fmt: skip
        extra = [d for d in da.dims if d not in keep and d != REPLICA_DIM and (da.sizes[d] > 1 or d in (hue, col, row))]
        self.fixed_sel = {d: 0 for d in da.dims if d not in keep and d != REPLICA_DIM and d not in extra}
        self.fixed = _facet_label(da, self.fixed_sel)
        if hue is None:
            hue = next((d for d in default_hue if d in extra), None)
        self.hue = hue
        rest = [d for d in extra if d not in (hue, col, row)]
        if col is None and rest and ncols_per_facet == 1:
            col = rest.pop(0)
        self.col = col
        self.rows = ([row] if row else []) + rest  # any further dims are folded into the rows
        self.col_sel = _combinations(da, [col]) if col else [{}]
        self.row_sel = _combinations(da, self.rows) if self.rows else [{}]
        self.hue_values = da[hue].values if hue and hue in da.coords else (np.arange(da.sizes[hue]) if hue else [])
        black = (np.array([[0, 0, 0, 1.0]]), None, None)
        self.colors, self.cmap, self.norm = _colors(self.hue_values) if hue else black
        self.ncols_per_facet = ncols_per_facet
        self.da = da

    def figure(self, sharex=True, sharey=True) -> tuple[Figure, np.ndarray]:
        nrow, ncol = len(self.row_sel), len(self.col_sel) * self.ncols_per_facet
        fig, axes = plt.subplots(
            nrow, ncol, figsize=(PANEL[0] * ncol + (1.0 if self.colorbar else 0), PANEL[1] * nrow + 0.3),
            squeeze=False, sharex=sharex if self.ncols_per_facet == 1 else False,
            sharey=sharey if self.ncols_per_facet == 1 else False, layout="constrained",
        )  # fmt: skip
        return fig, axes

    @property
    def colorbar(self) -> bool:
        return self.cmap is not None and len(self.hue_values) > MAX_LEGEND

    def facets(self, axes: np.ndarray):
        """(axes of the facet, selector of the facet, facet title)."""
        for i, rsel in enumerate(self.row_sel):
            for j, csel in enumerate(self.col_sel):
                sel = {**rsel, **csel}
                title = _facet_label(self.da, sel)
                sel = {**self.fixed_sel, **sel}
                cols = axes[i, j * self.ncols_per_facet:(j + 1) * self.ncols_per_facet]
                yield cols, sel, title

    def curves(self):
        """(selector, colour, label) of every hue value."""
        if not self.hue:
            yield {}, self.colors[0], None
            return
        for k, value in enumerate(self.hue_values):
            beyond = self.hue == "shear_rate" and float(value) > MODEL_VALIDITY_RATE
            yield {self.hue: k}, self.colors[k], _fmt(value) + (" (beyond model)" if beyond else "")

    def finish(self, fig: Figure, axes: np.ndarray, extra_handles: list | None = None) -> None:
        """Legend (few curves) or colour bar (many), shared by the facets."""
        handles = []
        if self.hue and not self.colorbar:
            handles = [Line2D([], [], color=c, lw=2, label=lab) for _, c, lab in self.curves()]
        handles += extra_handles or []
        if self.colorbar:
            sm = plt.cm.ScalarMappable(norm=self.norm, cmap=self.cmap)
            fig.colorbar(sm, ax=axes, label=_title(self.da, self.hue), shrink=0.9)
        if handles:
            title = _title(self.da, self.hue) if self.hue and not self.colorbar else None
            axes.flat[0].legend(handles=handles, title=title, fontsize=7, title_fontsize=7, framealpha=0.85)


def _band(ax, x, mean, err, color, gid, label=None, ls="-"):
    """A mean line with a +- err band."""
    (line,) = ax.plot(x, mean, color=color, ls=ls, lw=1.4, label=label, gid=gid)
    if err is not None and np.any(np.isfinite(err)):
        band = ax.fill_between(x, mean - err, mean + err, color=color, alpha=0.25, lw=0)
        band.set_gid(gid)
    return line


def _replica_stats(da: xr.DataArray, mask: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Mean, standard error and count over replicas of ``da`` where ``mask``."""
    v = da.where(mask)
    n = mask.sum(REPLICA_DIM)
    return v.mean(REPLICA_DIM), v.std(REPLICA_DIM, ddof=1) / np.sqrt(n.where(n > 1)), n


def _curve_counter():
    counter = itertools.count()
    return lambda: f"curve:{next(counter)}"


def plot_flow_curve(
    flow: xr.Dataset,
    fit: xr.Dataset | None = None,
    validity_rate: float = MODEL_VALIDITY_RATE,
    hue: str | None = None,
    col: str | None = None,
    row: str | None = None,
    quasistatic: xr.Dataset | None = None,
) -> Figure:
    """Steady stress vs shear rate of both protocols, with Herschel-Bulkley fits.

    Open circles: imposed rate; filled squares: creep (flowing replicas' late rate), with the
    share of stuck replicas written beside partly stuck points; creep stresses at which every
    replica is stuck are marked by a triangle at the left edge; drifting points (kept with
    ``flow_curve(keep_unsteady=True)``) by grey crosses. Error bars are drawn above the markers.
    Rates above ``validity_rate`` are shaded and their points drawn pale. Dashed: the fit over its
    window (the rates it used). Dash-dotted, with a band of +- its error: the quasistatic flow
    stress (the gdot -> 0 limit), when given.

    Parameters
    ----------
    flow : xarray.Dataset
        A ``flow_curve`` result: ``shear_rate``, ``shear_rate_err`` [RATE], ``stress``,
        ``stress_err`` [STRESS] on (..., point), coordinates ``protocol`` and ``point_value``
        (point); ``stuck_fraction``, ``n_stuck``, ``n_replicas``, ``steady``, ``all_stuck`` used
        when present.
    fit : xarray.Dataset, optional
        A ``fit_herschel_bulkley`` result on the same extra dims.
    validity_rate : float
        Limit of validity of the model [RATE]; None to mark nothing.
    hue, col, row : str, optional
        Dims for colours, facet columns and rows; by default the first extra dim is the hue and
        the next ones facets.
    quasistatic : xarray.Dataset, optional
        A ``quasistatic_flow_stress`` result (``flow_stress``, ``flow_stress_err`` [STRESS]),
        matched to the curves by the labels of the dims they share.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lay = _Layout(flow["stress"], {"point"}, hue, ("initial_state", *flow["stress"].dims), col, row)
    fig, axes = lay.figure()
    new_gid = _curve_counter()
    xmax_all = float(np.nanmax(np.r_[flow["shear_rate"].values.ravel(), flow["point_value"].where(
        flow.protocol == "imposed_rate").values.ravel(), 1e-12]))  # fmt: skip
    for cols, fsel, title in lay.facets(axes):
        ax = cols[0]
        curve_handles = []
        for hsel, color, _label in lay.curves():
            f = flow.isel({**fsel, **hsel})
            gid = new_gid()
            x, y = f["shear_rate"].values, f["stress"].values
            xe, ye = np.nan_to_num(f["shear_rate_err"].values), np.nan_to_num(f["stress_err"].values)
            steady = f["steady"].values if "steady" in f else np.ones(x.size, bool)
            beyond = x > validity_rate if validity_rate else np.zeros(x.size, bool)
            for protocol, marker, face in (("imposed_rate", "o", "white"), ("imposed_stress", "s", color)):
                on = (f.protocol.values == protocol) & np.isfinite(x) & np.isfinite(y)
                for part, alpha in ((on & steady & ~beyond, 1.0), (on & steady & beyond, 0.35)):
                    if part.any():
                        eb = ax.errorbar(
                            x[part], y[part], xerr=xe[part], yerr=ye[part], fmt=marker, ms=4.5, mfc=face,
                            mec=color, color=color, ecolor=color, elinewidth=1.2, capsize=2.5, alpha=alpha,
                            zorder=3, barsabove=True,
                        )
                        for artist in (*eb.lines[:1], *eb.lines[1], *eb.lines[2]):
                            artist.set_gid(gid)
                unsteady = on & ~steady
                if unsteady.any():
                    ax.plot(x[unsteady], y[unsteady], "x", color="0.4", ms=6, zorder=4, gid=gid)
            if "n_stuck" in f:
                creep = f.protocol.values == "imposed_stress"
                for k in np.flatnonzero(creep & np.isfinite(x) & (f["n_stuck"].values > 0)):
                    ax.annotate(f"{int(f['n_stuck'][k])}/{int(f['n_replicas'][k])} stuck", (x[k], y[k]),
                                xytext=(5, -9), textcoords="offset points", fontsize=6, color=color)  # fmt: skip
            if "all_stuck" in f and f["all_stuck"].values.any():
                s = f["point_value"].values[f["all_stuck"].values]
                ax.plot(np.zeros(s.size) + 0.015, s, "<", color=color, mfc="white", ms=6,
                        transform=ax.get_yaxis_transform(),
                        clip_on=False, gid=gid, zorder=4)  # fmt: skip
            if quasistatic is not None:
                _mark_quasistatic(ax, quasistatic, flow, {**fsel, **hsel}, color, gid)
            if fit is not None:
                p = fit.isel({k: v for k, v in {**fsel, **hsel}.items() if k in fit.dims})
                if np.isfinite(float(p["sigma_y"])):
                    g = np.geomspace(float(p["fit_min_rate"]), float(p["fit_max_rate"]), 100)
                    ax.plot(g, float(p["sigma_y"]) + float(p["a"]) * g ** float(p["n"]), "--", color=color, lw=1.2,
                            zorder=2, gid=gid)  # fmt: skip
                    fitted = (rf"$\Sigma_Y$ = {float(p['sigma_y']):.3f}$\pm${float(p['sigma_y_err']):.3f}, "
                              rf"n = {float(p['n']):.2f}$\pm${float(p['n_err']):.2f}")  # fmt: skip
                else:
                    fitted = "no fit: " + str(p["reason"].values)
                if len(lay.hue_values) <= 4:
                    curve_handles.append(Line2D([], [], ls="--", color=color, label=(
                        f"{_label}: {fitted}" if _label else fitted)))
            elif lay.hue and not lay.colorbar:
                curve_handles.append(Line2D([], [], ls="", marker="s", color=color, label=_label))
        if validity_rate:
            ax.axvspan(validity_rate, max(xmax_all * 2, validity_rate * 2), color="0.92", zorder=0, lw=0)
        ax.set(xscale="log")
        ax.set_title(title or lay.fixed, fontsize=9)
        excluded = []
        sub = flow.isel(fsel)
        if "all_stuck" in sub and int(sub["all_stuck"].sum()):
            excluded.append(f"{int(sub['all_stuck'].sum())} all stuck")
        if "steady" in sub:
            n_unsteady = int((~sub["steady"] & ~sub["all_stuck"] & (sub["n_replicas"] > 0)).sum())
            if n_unsteady:
                kept = flow.attrs.get("excluded_unsteady", 1) == 0
                excluded.append(f"{n_unsteady} drifting" + (" (kept, x)" if kept else " (left out)"))
        if excluded:
            ax.set_title((title or lay.fixed) + "\nnot on the curve: " + ", ".join(excluded), fontsize=8)
        if curve_handles:
            title_ = _title(flow["stress"], lay.hue) if lay.hue else None
            ax.add_artist(ax.legend(handles=curve_handles, fontsize=6.5, loc="upper left", title=title_,
                                    title_fontsize=7))  # fmt: skip
    for ax in axes[-1]:
        ax.set_xlabel(RATE_LABEL)
    for ax in axes[:, 0]:
        ax.set_ylabel(STRESS_LABEL)
    handles = [
        Line2D([], [], ls="", marker="o", mfc="white", mec="k", color="k", label="imposed rate"),
        Line2D([], [], ls="", marker="s", color="k", label="imposed stress (flowing)"),
    ]
    if "all_stuck" in flow and bool(flow["all_stuck"].any()):
        handles.append(Line2D([], [], ls="", marker="<", mfc="white", mec="k", color="k", label="all replicas stuck"))
    if fit is not None:
        handles.append(Line2D([], [], ls="--", color="k", label="Herschel-Bulkley fit"))
    if quasistatic is not None:
        handles.append(Line2D([], [], ls="-.", color="k", label=r"quasistatic ($\dot\gamma \to 0$)"))
    if validity_rate:
        beyond = rf"$\dot\gamma$ > {validity_rate:g} (beyond model)"
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.92", label=beyond))
    axes[0, -1].legend(handles=handles, fontsize=6.5, loc="lower right")
    if lay.colorbar:
        fig.colorbar(plt.cm.ScalarMappable(norm=lay.norm, cmap=lay.cmap), ax=axes,
                     label=_title(flow["stress"], lay.hue),
                     shrink=0.9)  # fmt: skip
    return fig


def _mark_quasistatic(ax, quasistatic: xr.Dataset, like: xr.Dataset, sel: dict[str, int], color, gid: str) -> None:
    """The quasistatic flow stress of the curve ``like.isel(sel)`` as a horizontal line with its error band."""
    labels = {d: like[d].values[i] for d, i in sel.items() if d in quasistatic.dims and d in like.coords}
    try:
        q = quasistatic.sel(labels)
    except KeyError:
        return
    q = q.isel({d: 0 for d in q["flow_stress"].dims})
    value, err = float(q["flow_stress"]), float(np.nan_to_num(q["flow_stress_err"]))
    if np.isfinite(value):
        ax.axhline(value, ls="-.", color=color, lw=1.1, zorder=2, gid=gid)
        ax.axhspan(value - err, value + err, color=color, alpha=0.12, lw=0, zorder=1)


def plot_stress_strain(
    ds: xr.Dataset, hue: str | None = None, col: str | None = None, row: str | None = None
) -> Figure:
    """Stress-strain curves of imposed-rate runs: mean +- standard error over replicas, one per rate.

    Parameters
    ----------
    ds : xarray.Dataset
        Imposed-rate group: ``stress`` [STRESS] on (..., shear_rate, seed, strain) with the
        ``strain`` clock (or ``time`` for runs given in time); ``completed`` used when present.
    hue, col, row : str, optional
        Dims for colours and facets (default: ``shear_rate``, then the other sweep dims).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rd = record_dim(ds)
    mean, err, _ = _replica_stats(ds["stress"], completed(ds) & xr.ones_like(ds["stress"], bool))
    lay = _Layout(mean, {rd}, hue, ("shear_rate",), col, row)
    fig, axes = lay.figure()
    new_gid = _curve_counter()
    for cols, fsel, title in lay.facets(axes):
        for hsel, color, _label in lay.curves():
            sel = {**fsel, **hsel}
            _band(cols[0], ds[rd].values, mean.isel(sel).values, err.isel(sel).values, color, new_gid())
        cols[0].set_title(title or lay.fixed, fontsize=9)
    xlabel = r"strain $\gamma$" if rd == "strain" else TIME_LABEL
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel(STRESS_LABEL)
    fig.suptitle(f"stress-strain, mean $\\pm$ s.e. over {ds.sizes[REPLICA_DIM]} replicas", fontsize=10)
    lay.finish(fig, axes)
    return fig


def plot_creep(ds: xr.Dataset, hue: str | None = None, col: str | None = None, row: str | None = None) -> Figure:
    """Creep curves gdot(t) on log-log axes, flowing and stuck replicas apart.

    Solid line and band: mean +- standard error of the flowing replicas; dotted line: mean of the
    stuck replicas (never mixed with the flowing ones), with a cross at each stuck run's arrest
    time (at its last positive rate). Legend entries (or the facet note, with many curves) give the
    numbers of flowing and stuck replicas.

    Parameters
    ----------
    ds : xarray.Dataset
        Creep group: ``strain_rate`` [RATE] on (..., stress_imposed, seed, time), ``stuck`` (bool)
        and ``arrest_time`` [TIME] on (..., seed); ``completed`` used when present.
    hue, col, row : str, optional
        Dims for colours and facets (default: ``stress_imposed``, then the other sweep dims).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rd = record_dim(ds)
    present = completed(ds)
    stuck = ds["stuck"].astype(bool) & present
    arrest = arrest_times(ds)
    rate = ds["strain_rate"].where((ds["strain_rate"] > 0) & (ds["time"] > 0))
    fmean, ferr, nf = _replica_stats(rate, present & ~stuck & rate.notnull())
    smean, _, _ = _replica_stats(rate, stuck & rate.notnull())
    n_flow, n_stuck = (present & ~stuck).sum(REPLICA_DIM), stuck.sum(REPLICA_DIM)
    lay = _Layout(fmean, {rd}, hue, ("stress_imposed",), col, row)
    fig, axes = lay.figure()
    new_gid = _curve_counter()
    time = ds["time"] + xr.zeros_like(ds["strain_rate"])
    for cols, fsel, title in lay.facets(axes):
        ax = cols[0]
        handles, total_stuck, total = [], 0, 0
        for hsel, color, label in lay.curves():
            sel = {**fsel, **hsel}
            gid = new_gid()
            t = ds[rd].values if rd == "time" else time.isel(sel).mean(REPLICA_DIM).values
            nf_, ns_ = int(n_flow.isel(sel)), int(n_stuck.isel(sel))
            total_stuck, total = total_stuck + ns_, total + nf_ + ns_
            if nf_:
                _band(ax, t, fmean.isel(sel).values, ferr.isel(sel).values, color, gid)
            if ns_:
                ax.plot(t, smean.isel(sel).values, ":", color=color, lw=1.2, gid=gid)
                runs = stuck.isel(sel)
                for s in np.flatnonzero(runs.values):
                    r = rate.isel(sel).isel({REPLICA_DIM: s})
                    last = r.dropna(rd)
                    y = float(last[-1]) if last.size else np.nan
                    ax.plot(float(arrest.isel(sel).isel({REPLICA_DIM: s})), y, "x", color=color, ms=6,
                            mew=1.5, gid=gid, zorder=4)  # fmt: skip
            handles.append(Line2D([], [], color=color, lw=2, label=f"{label}: {nf_} flowing, {ns_} stuck"))
        ax.set(xscale="log", yscale="log")
        note = rf"{total_stuck} of {total} runs stuck ($\times$: arrest; dotted: their mean)"
        ax.set_title(f"{title or lay.fixed}\n{note}", fontsize=8)
        if lay.hue and not lay.colorbar:
            ax.legend(handles=handles, title=_title(fmean, lay.hue), fontsize=6.5, title_fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel(TIME_LABEL)
    for ax in axes[:, 0]:
        ax.set_ylabel(rf"strain rate $\dot\gamma$ [{RATE}]")
    fig.suptitle(r"creep: flowing replicas mean $\pm$ s.e., stuck replicas apart", fontsize=10)
    if lay.colorbar:
        lay.finish(fig, axes)
    return fig


STRAIN_LABEL = r"strain $\gamma$"
AVALANCHE_SYMBOLS = {"avalanche_size": "S", "avalanche_duration": "T", "activations": "n"}


def plot_quasistatic_stress_strain(
    ds: xr.Dataset, bins: int | np.ndarray = 60, start_fraction: float = 0.5, hue: str | None = None,
    col: str | None = None, row: str | None = None,
) -> Figure:  # fmt: skip
    """Quasistatic stress-strain curves: the sawtooth averaged over strain bins, mean +- s.e. over
    replicas, one curve per initial state; dotted: the quasistatic flow stress of each curve.

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group: ``strain``, ``stress_before``, ``stress_after`` on (..., initial_state,
        seed, avalanche) (``quasistatic_stress_strain``).
    bins : int or array-like
        Strain bins (``quasistatic_stress_strain``).
    start_fraction : float
        Steady window of the flow stress (``quasistatic_flow_stress``).
    hue, col, row : str, optional
        Dims for colours and facets (default: ``initial_state``, then the other sweep dims).

    Returns
    -------
    matplotlib.figure.Figure
    """
    curve = quasistatic_stress_strain(ds, bins)
    flow = quasistatic_flow_stress(ds, start_fraction)
    lay = _Layout(curve["stress"], {"strain"}, hue, ("initial_state",), col, row)
    fig, axes = lay.figure()
    new_gid = _curve_counter()
    for cols, fsel, title in lay.facets(axes):
        for hsel, color, _label in lay.curves():
            sel = {**fsel, **hsel}
            gid = new_gid()
            c = curve.isel(sel)
            _band(cols[0], curve["strain"].values, c["stress"].values, c["stress_err"].values, color, gid)
            value = float(flow["flow_stress"].isel({k: v for k, v in sel.items() if k in flow.dims}))
            if np.isfinite(value):
                cols[0].axhline(value, ls=":", color=color, lw=1.0, gid=gid)
        cols[0].set_title(title or lay.fixed, fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel(STRAIN_LABEL)
    for ax in axes[:, 0]:
        ax.set_ylabel(STRESS_LABEL)
    fig.suptitle(f"quasistatic shear, mean $\\pm$ s.e. over {ds.sizes[REPLICA_DIM]} replicas", fontsize=10)
    lay.finish(fig, axes, [Line2D([], [], ls=":", color="k", label="flow stress")])
    return fig


def _avalanche_label(da: xr.DataArray, variable: str) -> str:
    units = da.attrs.get("units", "1")
    name = VARIABLES[variable].long_name if variable in VARIABLES else variable.replace("_", " ")
    symbol = AVALANCHE_SYMBOLS.get(variable, "x")
    return f"{name} ${symbol}$" + (f" [{units}]" if units not in (None, "1") else "")


def plot_avalanche_distribution(
    ds: xr.Dataset, variable: str = "avalanche_size", fit: xr.Dataset | None = None, start_fraction: float = 0.5,
    bins: int | np.ndarray = 30, hue: str | None = None, col: str | None = None, row: str | None = None,
) -> Figure:  # fmt: skip
    """Log-log density of an avalanche observable (steady avalanches, seeds pooled), with its fit.

    Markers: the log-binned density (``avalanche_distribution``); dashed: the fitted power law
    with exponential cutoff above x_min (``fitted_density``), its exponent and cutoff in the
    legend.

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group (``strain`` and ``variable`` on (..., initial_state, seed, avalanche)).
    variable : str
        ``avalanche_size``, ``avalanche_duration`` or ``activations``.
    fit : xarray.Dataset, optional
        A ``fit_avalanches`` result of the same variable and dims; no fitted line without it.
    start_fraction : float
        Steady window (``steady_events``).
    bins : int or array-like
        Log-spaced bins (``avalanche_distribution``).
    hue, col, row : str, optional
        Dims for colours and facets (default: ``initial_state``, then the other sweep dims).

    Returns
    -------
    matplotlib.figure.Figure
    """
    dist = avalanche_distribution(ds, variable, start_fraction, bins)
    lay = _Layout(dist["density"], {variable}, hue, ("initial_state",), col, row)
    fig, axes = lay.figure()
    new_gid = _curve_counter()
    symbol = AVALANCHE_SYMBOLS.get(variable, "x")
    for cols, fsel, title in lay.facets(axes):
        ax = cols[0]
        handles = []
        for hsel, color, label in lay.curves():
            sel = {**fsel, **hsel}
            gid = new_gid()
            d = dist.isel(sel)
            seen = d["count"].values > 0
            x = dist[variable].values
            ax.plot(x[seen], d["density"].values[seen], "o", ms=3.5, color=color, mfc="none", gid=gid)
            text = f"{label}: " if label else ""
            text += f"{int(d['samples'])} avalanches"
            if fit is not None:
                p = fit.isel({k: v for k, v in sel.items() if k in fit.dims})
                if np.isfinite(float(p["exponent"])):
                    grid = np.geomspace(float(p["xmin"]), float(dist[f"{variable}_edges"].max()), 200)
                    ax.plot(grid, fitted_density(p, grid), "--", color=color, lw=1.3, gid=gid)
                    text += (rf", $\tau$ = {float(p['exponent']):.3f} $\pm$ {float(p['exponent_err']):.3f}, "
                             rf"${symbol}_c$ = {float(p['cutoff']):.3g}")  # fmt: skip
                else:
                    text += ", no fit"
            handles.append(Line2D([], [], ls="--" if fit is not None else "", marker="o", mfc="none", color=color,
                                  label=text))  # fmt: skip
        ax.set(xscale="log", yscale="log")
        ax.set_title(title or lay.fixed, fontsize=9)
        if len(handles) <= MAX_LEGEND:
            ax.legend(handles=handles, fontsize=6.5, loc="lower left",
                      title=_title(dist["density"], lay.hue) if lay.hue else None, title_fontsize=7)  # fmt: skip
    units = dist["density"].attrs.get("units", "1")
    for ax in axes[-1]:
        ax.set_xlabel(_avalanche_label(dist[variable], variable))
    for ax in axes[:, 0]:
        ax.set_ylabel(f"$P({symbol})$" + (f" [{units}]" if units != "1" else ""))
    model = rf"$P({symbol}) \propto {symbol}^{{-\tau}} e^{{-{symbol}/{symbol}_c}}$ for ${symbol} \geq {symbol}_{{min}}$"
    fig.suptitle("steady avalanches" + (f", fit {model}" if fit is not None else ""), fontsize=10)
    if lay.colorbar:
        lay.finish(fig, axes)
    return fig


def plot_quasistatic_flow_stress(
    flow: xr.Dataset, overshoot: xr.Dataset | None = None, x: str = "initial_state", col: str | None = None,
    row: str | None = None,
) -> Figure:  # fmt: skip
    """Quasistatic flow stress (filled squares) and peak stress (open triangles) per initial state,
    with error bars; the overshoot written beside each peak.

    Parameters
    ----------
    flow : xarray.Dataset
        A ``quasistatic_flow_stress`` result (``flow_stress``, ``flow_stress_err`` [STRESS]).
    overshoot : xarray.Dataset, optional
        A ``quasistatic_overshoot`` result on the same dims (``peak_stress``, ``overshoot`` and
        their errors).
    x : str
        Dim along the horizontal axis (categories); added if absent.
    col, row : str, optional
        Dims of the facets (default: the other sweep dims).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if x not in flow.dims:
        flow = flow.expand_dims(x)
        overshoot = None if overshoot is None else overshoot.expand_dims(x)
    lay = _Layout(flow["flow_stress"], {x}, None, (), col, row)
    fig, axes = lay.figure(sharex=False)
    labels = [str(v) for v in (flow[x].values if x in flow.coords else range(flow.sizes[x]))]
    pos = np.arange(len(labels))
    new_gid = _curve_counter()
    for cols, fsel, title in lay.facets(axes):
        ax = cols[0]
        f = flow.isel(fsel)
        gid = new_gid()
        eb = ax.errorbar(pos, f["flow_stress"].values, yerr=np.nan_to_num(f["flow_stress_err"].values), fmt="s",
                         color="k", ms=5, capsize=3, label="flow stress (steady window)")  # fmt: skip
        eb.lines[0].set_gid(gid)
        if overshoot is not None:
            o = overshoot.isel({k: v for k, v in fsel.items() if k in overshoot.dims})
            ax.errorbar(pos + 0.12, o["peak_stress"].values, yerr=np.nan_to_num(o["peak_stress_err"].values),
                        fmt="^", color="C3", mfc="white", ms=5, capsize=3, label="peak stress")  # fmt: skip
            for k in pos:
                if np.isfinite(float(o["overshoot"][k])):
                    text = rf"$\Delta\Sigma$ = {float(o['overshoot'][k]):.3f}$\pm${float(o['overshoot_err'][k]):.3f}"
                    ax.annotate(text, (k + 0.12, float(o["peak_stress"][k])), xytext=(6, 3), textcoords="offset points",
                                fontsize=6.5, color="C3")  # fmt: skip
        ax.set_xticks(pos, labels)
        ax.set_xlim(-0.5, len(labels) - 0.3)
        ax.set_title(title or lay.fixed, fontsize=9)
        ax.set_xlabel(_title(flow["flow_stress"], x))
    for ax in axes[:, 0]:
        ax.set_ylabel(STRESS_LABEL)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(r"quasistatic shear ($\dot\gamma \to 0$), mean $\pm$ s.e.", fontsize=10)
    return fig


def _renewal_from(ds: xr.Dataset) -> ThresholdDistribution:
    """P_d of a sweep: the ``thresholds`` of the spec kept in the attributes, else the paper's law."""
    import yaml

    try:
        spec = yaml.safe_load(ds.attrs["spec"])
        th = spec["model"]["thresholds"]
        return ThresholdDistribution(**{k: th[k] for k in ("shape", "scale", "shift") if k in th})
    except Exception:  # noqa: BLE001 - no spec or a non-Weibull law: the paper's P_d
        return ThresholdDistribution()


def plot_distributions(ds: xr.Dataset, renewal: ThresholdDistribution | None = None, hue: str | None = None,
                       row: str | None = None) -> Figure:  # fmt: skip
    """P_a(sigma_th) above the renewal law P_d, and P(x), from the snapshots, one curve per rate.

    Each row of facets is one combination of the sweep dims other than the hue; the left column is
    P_a with P_d (black dashed, under the data), the right one P(x). Legend entries give the mean.

    Parameters
    ----------
    ds : xarray.Dataset
        Imposed-rate group with snapshots: ``threshold``, ``local_stress`` [STRESS] on
        (..., shear_rate, seed, snapshot_strain, y, x).
    renewal : ThresholdDistribution, optional
        P_d; by default the one of the sweep spec in ``ds.attrs["spec"]``, else the paper's.
    hue, row : str, optional
        Dim for colours (default ``shear_rate``) and for rows (default: all others).

    Returns
    -------
    matplotlib.figure.Figure
    """
    renewal = _renewal_from(ds) if renewal is None else renewal
    pa, px = threshold_distribution(ds), gap_distribution(ds)
    lay = _Layout(pa["density"], {"threshold"}, hue, ("shear_rate",), None, row, ncols_per_facet=2)
    fig, axes = lay.figure()
    new_gid = _curve_counter()
    from scipy import stats

    s = np.linspace(0, float(pa["threshold"].max()), 400)
    pd = stats.weibull_min(renewal.shape, loc=renewal.shift, scale=renewal.scale).pdf(s)
    for cols, fsel, title in lay.facets(axes):
        cols[0].plot(s, pd, "--", color="k", lw=1.3, zorder=1, label=f"$P_d$ (mean {renewal.mean():.3f})")
        for hsel, color, label in lay.curves():
            sel = {**fsel, **hsel}
            gid = new_gid()
            a, x = pa.isel(sel), px.isel(sel)
            text = f"{label}: mean {float(a['mean']):.3f}" if label else f"mean {float(a['mean']):.3f}"
            cols[0].plot(a["threshold"], a["density"], color=color, lw=1.3, zorder=2, gid=gid, label=text)
            cols[1].plot(x["gap"], x["density"], color=color, lw=1.3, zorder=2, gid=gid,
                         label=f"{label}: mean {float(x['mean']):.3f}" if label else None)  # fmt: skip
        title = title or lay.fixed
        cols[0].set_title(r"$P_a(\sigma_{th})$" + (f", {title}" if title else ""), fontsize=9)
        cols[1].set_title("$P(x)$" + (f", {title}" if title else ""), fontsize=9)
        cols[0].set_ylabel(f"density [1 / ({STRESS})]", fontsize=8)
        if not lay.colorbar:
            cols[0].legend(fontsize=6.5, title=_title(pa["density"], lay.hue) if lay.hue else None, title_fontsize=7)
            if lay.hue:
                cols[1].legend(fontsize=6.5, title=_title(pa["density"], lay.hue), title_fontsize=7)
        else:
            cols[0].legend(handles=[cols[0].lines[0]], fontsize=6.5)
    for ax in axes[-1, 0::2]:
        ax.set_xlabel(rf"threshold $\sigma_{{th}}$ [{STRESS}]")
    for ax in axes[-1, 1::2]:
        ax.set_xlabel(rf"gap $x = \sigma_{{th}} - \sigma$ [{STRESS}]")
    if lay.colorbar:
        sm = plt.cm.ScalarMappable(norm=lay.norm, cmap=lay.cmap)
        fig.colorbar(sm, ax=axes, label=_title(pa["density"], lay.hue), shrink=0.9)
    return fig


def plot_cumulative_gap(states: list[InitialState], stress: float | None = None) -> Figure:
    """C(X) of initial states; a dotted line marks an imposed stress (sites left of it yield at once).

    Parameters
    ----------
    states : list of InitialState
        The states to compare (any number; one colour each).
    stress : float, optional
        Imposed stress Sigma_0 [STRESS] to mark.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
    colors, _, _ = _colors(np.array([s.name for s in states], dtype=object))
    for k, (state, color) in enumerate(zip(states, colors, strict=True)):
        c = cumulative_gap(state)
        ax.plot(c.gap, c, color=color, label=f"{state.name} ($\\mu$ = {state.shear_modulus:g})", gid=f"curve:{k}")
    if stress is not None:
        ax.axvline(stress, color="gray", ls=":", label=rf"$\Sigma_0$ = {stress:g}")
    ax.set(xlabel=f"gap X [{STRESS}]", ylabel="C(X)", title="cumulative gap distribution of the initial states")
    ax.legend(fontsize=7, ncols=1 + len(states) // 12)
    return fig


def save_figure(fig: Figure, path: Path, formats: Iterable[str] = FORMATS, dpi: int = DPI) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix of ``formats`` (PNG at ``dpi``, vector formats as is).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : Path
        Path without suffix (any suffix is replaced).
    formats : iterable of str
        File formats, e.g. ``("png", "pdf")`` or ``("png", "svg")``.
    dpi : int
        Resolution of raster formats.

    Returns
    -------
    list of Path
    """
    paths = []
    for fmt in formats:
        out = Path(path).with_suffix(f".{fmt}")
        fig.savefig(out, dpi=dpi)
        paths.append(out)
    return paths


def write_figures(
    tree: xr.DataTree, outdir: Path, formats: Iterable[str] = FORMATS, dpi: int = DPI,
    validity_rate: float = MODEL_VALIDITY_RATE,
) -> list[Path]:  # fmt: skip
    """Draw every figure the assembled data allow and write each as PNG and a vector file.

    Figures: ``flow_curve`` (with the Herschel-Bulkley fit of every curve that has enough points
    below ``validity_rate``, and the quasistatic flow stress as its gdot -> 0 line), ``stress_strain``
    and ``distributions`` (imposed rate, with snapshots), ``creep`` (imposed stress),
    ``quasistatic_stress_strain``, ``avalanche_sizes`` (with the fitted exponent) and
    ``quasistatic_flow_stress`` (quasistatic shear).

    Parameters
    ----------
    tree : xarray.DataTree
        An assembled sweep (groups ``imposed_rate``, ``imposed_stress`` and/or ``quasistatic``).
    outdir : Path
        Folder (created).
    formats : iterable of str
        File formats of every figure; PNG and PDF by default.
    dpi : int
        Resolution of the PNG files (300: print).
    validity_rate : float
        Highest rate fitted and limit marked on the flow curve [RATE].

    Returns
    -------
    list of Path
        The files written.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rate = tree["imposed_rate"].to_dataset() if "imposed_rate" in tree.children else None
    creep = tree["imposed_stress"].to_dataset() if "imposed_stress" in tree.children else None
    qs = tree["quasistatic"].to_dataset() if "quasistatic" in tree.children else None
    qs_flow = quasistatic_flow_stress(qs) if qs is not None else None
    figures: dict[str, Figure] = {}
    if rate is not None or creep is not None:
        flow = flow_curve(rate, creep)
        fit = fit_herschel_bulkley(flow, max_rate=validity_rate)
        figures["flow_curve"] = plot_flow_curve(flow, fit, validity_rate=validity_rate, quasistatic=qs_flow)
    if rate is not None:
        figures["stress_strain"] = plot_stress_strain(rate)
        if snapshot_dim(rate):
            figures["distributions"] = plot_distributions(rate.assign_attrs(spec=tree.attrs.get("spec", "")))
    if creep is not None:
        figures["creep"] = plot_creep(creep)
    if qs is not None:
        figures["quasistatic_stress_strain"] = plot_quasistatic_stress_strain(qs)
        figures["avalanche_sizes"] = plot_avalanche_distribution(qs, fit=fit_avalanches(qs))
        figures["quasistatic_flow_stress"] = plot_quasistatic_flow_stress(qs_flow, quasistatic_overshoot(qs))
    paths = []
    for name, fig in figures.items():
        paths += save_figure(fig, outdir / name, formats, dpi)
        plt.close(fig)
    return paths
