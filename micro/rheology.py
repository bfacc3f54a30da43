"""Particle reference curves: imposed shear rate and imposed stress (feedback), as lattice-like datasets.

Both protocols take the engine's protocol objects (``ImposedRate``, ``ImposedStress``: rate or
stress, run length, record schedule) and return an ``xarray.Dataset`` with the lattice runs'
variable names and clocks (``stress``, ``strain_rate`` on ``strain`` under imposed rate, with ``time``;
``strain``, ``stress``, ``strain_rate`` on ``time`` under imposed stress), so analysis treats
particle and lattice runs alike.

The box is sheared by ``fix deform`` (tilt xy, Lees-Edwards ``remap v``), the particles follow
velocity Verlet (``fix nve``) with the chosen dissipation (``Dissipation``). The macroscopic rate
gdot is piecewise constant over blocks of ``block`` MD steps (0.05 time units by default): under
imposed stress it follows the feedback d gdot / dt = B (sigma_0 - sigma_xy) (explicit Euler over a
block, sigma_xy measured at the block's end), under imposed rate it is constant. sigma_xy = -P_xy is
the full stress (virial plus the kinetic part of the velocities relative to the affine flow,
``compute temp/deform``). Recorded ``stress`` and ``strain_rate`` are means over the record
interval of the block-end stresses and of gdot.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import xarray as xr
from epmsweep.engine import ImposedRate, ImposedStress, ParameterError, __version__
from epmsweep.engine.variables import entry

from .configuration import Configuration
from .model import Dissipation, GlassModel
from .preparation import lammps_seeds
from .simulation import Simulation


def shear(
    config: Configuration,
    protocol: ImposedRate | ImposedStress,
    *,
    model: GlassModel | None = None,
    dissipation: Dissipation | None = None,
    feedback: float = 1.0,
    block: int = 10,
    arrest_rate: float = 1e-4,
    seed: int = 0,
) -> xr.Dataset:
    """Shear an athermal configuration at imposed rate or imposed stress.

    Parameters
    ----------
    config : Configuration
        Start (usually an inherent structure), at rest; under imposed rate the particles start
        with the affine flow profile.
    protocol : ImposedRate or ImposedStress
        Drive, run length and records (``protocol.schedule(model.dt)``); snapshots are not
        supported for particle runs.
    dissipation : Dissipation
        Default: pairwise, zeta = 1 (the paper's). Per-particle damping only under imposed rate.
    feedback : float
        B of the imposed-stress feedback (1 / (stress time^2)); the paper's B = 1.
    block : int
        MD steps per rate update and stress sample.
    arrest_rate : float
        Under imposed stress the run is flagged ``stuck`` if the strain gained over its last fifth,
        divided by that time, is below this rate in magnitude (the feedback leaves a decaying
        ringing of ~1e-4 around an arrested state for tens of time units).

    Returns
    -------
    xarray.Dataset
        ``stress``, ``strain_rate`` (and ``strain``, total shear strain since the start, under
        imposed stress) on the protocol's clock ``strain`` or ``time`` as for lattice runs;
        scalars ``peak_stress``, ``strain_at_peak`` (imposed rate) or ``stuck`` (imposed stress);
        scalar coordinates ``shear_rate`` or ``stress_imposed`` and ``seed``, so that
        ``ds.expand_dims(("shear_rate", "seed"))`` (or a concat over seeds) has the layout of an
        assembled sweep for ``epmsweep.analysis``; model, dissipation, protocol, seed and version
        in ``attrs``.
    """
    model, dissipation = model or GlassModel(), dissipation or Dissipation()
    if not isinstance(protocol, (ImposedRate, ImposedStress)):
        raise ParameterError("protocol", "must be ImposedRate or ImposedStress")
    schedule = protocol.schedule(model.dt)
    records = schedule.record_steps
    if schedule.snapshot_steps.size:
        raise ParameterError("protocol.snapshot", "snapshots are not supported for particle runs")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ParameterError("block", f"must be an integer >= 1, got {block!r}")
    creep = isinstance(protocol, ImposedStress)
    if creep and dissipation.kind == "particle":
        raise ParameterError(
            "dissipation.kind",
            "per-particle damping drags the particles towards the affine flow of the current rate, which the "
            "stress feedback keeps changing (strong oscillations, particles lost); use 'pairwise' under imposed stress",
        )
    gdot = 0.0 if creep else protocol.shear_rate
    dt = model.dt
    (lmp_seed,) = lammps_seeds(seed, 1)
    with Simulation(model, config, dissipation, seed=lmp_seed) as sim:
        _, ly, xy0 = sim.box()
        sim.commands(
            "compute flow all temp/deform",
            "compute stress all pressure flow",
            "thermo_style custom step pe c_stress[4]",
            "variable gdot internal 0.0",
            "variable xy0 internal 0.0",
            "variable t0 internal 0.0",
            "variable tilt equal v_xy0+v_gdot*ly*(time-v_t0)",
            "variable tilt_rate equal v_gdot*ly",
            "fix shear all deform 1 xy variable v_tilt v_tilt_rate remap v flip no",
            "fix integrate all nve",
        )
        if dissipation.kind == "particle":
            sim.commands(
                f"fix damping all langevin 0.0 0.0 {1.0 / dissipation.zeta!r} {lmp_seed} zero no",
                "fix_modify damping temp flow",
            )
        if not creep:  # start in the affine flow: no momentum has to diffuse in from the boundaries
            sim.commands(f"velocity all ramp vx {-gdot * ly / 2!r} {gdot * ly / 2!r} y 0 {ly!r} sum no units box")

        def stress_now() -> float:
            return -float(sim.lmp.numpy.extract_compute("stress", 0, 1)[3])

        sim.commands("run 0")
        sigma = stress_now()
        rec_stress, rec_strain, rec_rate = [sigma], [0.0], [gdot]
        strain = 0.0
        acc_stress = acc_rate = 0.0
        acc_n = 0
        step = 0
        for previous, target in zip(records[:-1], records[1:], strict=True):
            while step < target:
                k = min(block, target - step)
                sim.lmp.set_internal_variable("gdot", gdot)
                sim.lmp.set_internal_variable("xy0", xy0 + strain * ly)
                sim.lmp.set_internal_variable("t0", step * dt)
                sim.commands(f"run {k} pre no post no")
                step += k
                strain = strain + gdot * k * dt if creep else gdot * step * dt  # exact in time at imposed rate
                acc_rate += gdot * k
                sigma = stress_now()
                acc_stress += sigma
                acc_n += 1
                if creep:
                    gdot += feedback * (protocol.stress - sigma) * k * dt
                    if not math.isfinite(gdot):
                        raise FloatingPointError("the feedback rate became non-finite")
            rec_stress.append(acc_stress / acc_n)
            rec_rate.append(acc_rate / (target - previous))
            rec_strain.append(strain)
            acc_stress = acc_rate = 0.0
            acc_n = 0
    values = {
        protocol.record_dim: schedule.record_clock, "time": records * dt, "strain": np.array(rec_strain),
        "stress": np.array(rec_stress), "strain_rate": np.array(rec_rate),
    }  # fmt: skip
    return _dataset(protocol, values, model, dissipation, feedback, block, arrest_rate, seed, config)


def _dataset(protocol, values, model, dissipation, feedback, block, arrest_rate, seed, config):
    """The run in the engine's vocabulary: stresses are sigma_xy averaged over each record interval."""
    time, strain, stress = values["time"], values["strain"], values["stress"]
    if isinstance(protocol, ImposedStress):
        i = int(np.searchsorted(time, 0.8 * time[-1]))
        late_rate = (strain[-1] - strain[i]) / (time[-1] - time[i]) if i < time.size - 1 else values["strain_rate"][-1]
        values["stuck"] = abs(late_rate) < arrest_rate  # arrested: late strain rate below arrest_rate
    else:
        i = int(np.argmax(stress))
        values.update(peak_stress=stress[i], strain_at_peak=strain[i])
    names = [n for n in (*protocol.series, *protocol.scalars) if n in values]
    coords = {n: entry(n, values[n], protocol) for n in (protocol.record_dim, *protocol.record_coords)}
    data = {n: entry(n, values[n], protocol) for n in names}
    attrs = {
        **protocol.to_attrs(),
        **model.to_attrs(),
        "dissipation": dissipation.kind,
        "dissipation_zeta": dissipation.zeta,
        "feedback_B": feedback,
        "block_steps": block,
        "arrest_rate": arrest_rate,
        "seed": seed,
        "particles": config.n,
        **{f"prep_{k}": v for k, v in config.attrs.items()},
        "source": "particles",
        "epmsweep_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    primary = protocol.stress if isinstance(protocol, ImposedStress) else protocol.shear_rate
    coords.update({protocol.primary_dim: primary, "seed": seed})
    return xr.Dataset(data, coords=coords, attrs={**attrs, "record_dim": protocol.record_dim})
