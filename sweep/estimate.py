"""What a sweep will cost before it runs: runs per protocol and axis, runs already stored, compute time.

The compute time comes from the engine's cost model (``epmsweep.engine.cost``): one run of every
parameter point (protocol, initial state, shear rate or stress, model axes; replica 0) is
calibrated on a short real prefix of itself, and every replica of that point is counted at its
cost. Above ``max_points`` points, evenly spread points and the first point of every protocol are
calibrated, and each other point takes the cost per unit of length (time step; avalanche or unit
strain of a quasistatic run, ``engine.cost.run_length``) of the calibrated point of the same
protocol and lattice size nearest in its shear rate or stress, times its own length.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
from epmsweep.engine.cost import DEFAULT_BUDGET, RunCost, calibrate, run_length, warm

from .plan import Plan, Run
from .spec import PRIMARY_DIMS, axis_groups, model_parameters

MAX_POINTS = 48


@dataclass(frozen=True)
class Point:
    """Runs that differ only by replica: one cost for all of them."""

    protocol: str
    first: Run  # the point's first replica, the one measured
    keys: tuple[str, ...]  # of all its replicas
    length: float  # in the unit of its protocol (``engine.cost.run_length``)
    L: int

    @property
    def primary(self) -> float:
        """Its value on the protocol's own axis (1 for a protocol without one)."""
        dim = PRIMARY_DIMS[self.protocol]
        return self.first.coords[dim] if dim else 1.0


@dataclass(frozen=True)
class Estimate:
    """Estimated CPU seconds of a plan's runs (one core each).

    Attributes
    ----------
    run_seconds : dict
        Estimated CPU seconds by run key.
    points, calibrated : int
        Parameter points of the plan, and how many were calibrated by a real prefix.
    calibration_seconds : float
        Wall time the calibration took.
    """

    run_seconds: dict[str, float]
    points: int
    calibrated: int
    calibration_seconds: float

    def seconds(self, keys=None) -> float:
        """CPU seconds of the runs ``keys`` (default: all)."""
        keys = self.run_seconds.keys() if keys is None else keys
        return float(sum(self.run_seconds[k] for k in keys))

    def wall_seconds(self, keys=None, cores: int | None = None) -> float:
        """Wall time of the runs ``keys`` on ``cores`` workers (default: this machine's cores):
        their CPU time shared out, but never less than the longest run."""
        keys = list(self.run_seconds if keys is None else keys)
        if not keys:
            return 0.0
        cores = cores or os.cpu_count() or 1
        return max(self.seconds(keys) / cores, max(self.run_seconds[k] for k in keys))


def points_of(plan: Plan) -> list[Point]:
    """The plan's parameter points (all coordinates but ``seed``) in plan order: blocks of
    consecutive runs (``seed`` varies fastest), the first of each made, the others known by key."""
    keys, replicas, points = list(plan.keys()), plan.spec.replicas, []
    for start in range(0, len(keys), replicas):
        first = plan.runs[start]
        params = model_parameters(first.model, first.overrides)
        length = run_length(first.protocol_instance(), params.dt)[0]
        points.append(Point(first.protocol, first, tuple(keys[start : start + replicas]), length, params.L))
    return points


def _measure(point: Point, budget: float) -> RunCost:
    params, state, protocol = point.first.build()
    return calibrate(params, state, protocol, point.first.dynamics_seed, budget=budget)


def _nearest(point: Point, measured: dict[int, tuple[Point, RunCost]]) -> tuple[Point, RunCost]:
    def distance(item):
        other = item[0]
        a, b = max(point.primary, 1e-300), max(other.primary, 1e-300)
        return (other.protocol != point.protocol, other.L != point.L, abs(math.log(a / b)))

    return min(measured.values(), key=distance)


def estimate(plan: Plan, *, budget: float = DEFAULT_BUDGET, max_points: int = MAX_POINTS) -> Estimate:
    """Estimate the CPU time of every run of ``plan`` by calibrating its parameter points (see module doc)."""
    start = time.perf_counter()
    points = points_of(plan)
    chosen = set(np.linspace(0, len(points) - 1, min(max_points, len(points))).round().astype(int).tolist())
    chosen = sorted(chosen | {next(i for i, p in enumerate(points) if p.protocol == name) for name in plan.dims})
    warm()
    measured = {i: (points[i], _measure(points[i], budget)) for i in chosen}
    run_seconds = {}
    for i, point in enumerate(points):
        if i in measured:
            seconds = measured[i][1].seconds
        else:
            other, cost = _nearest(point, measured)
            seconds = cost.seconds / other.length * point.length if other.length else cost.seconds
        run_seconds.update(dict.fromkeys(point.keys, seconds))
    return Estimate(run_seconds, len(points), len(measured), time.perf_counter() - start)


def _short(v) -> str:
    if not isinstance(v, float):
        return str(v)
    text = f"{v:.6g}"
    return text if any(c in text for c in ".en") else f"{text}.0"  # a float reads as one: 2.0, not 2


def _span(values) -> str:
    values = [_short(v) for v in values]
    return values[0] if len(values) == 1 else f"{values[0]}..{values[-1]}"


def describe(plan: Plan, stored: set[str]) -> list[str]:
    """Lines of ``epmsweep plan``: runs per protocol and per axis (values, first..last), stored runs."""
    spec = plan.spec
    blocks = {}
    groups = axis_groups(spec)
    for name, (_, primary_values) in spec.protocols.items():
        axes = [("initial_state", [s.label for s in spec.states], "")]
        axes += [(PRIMARY_DIMS[name], primary_values, "")] if PRIMARY_DIMS[name] else []
        for g in groups:
            zipped = f" (zipped with {', '.join(a.name for a in g[1:])})" if len(g) > 1 else ""
            axes.append((g[0].name, g[0].values, zipped))
            axes.extend((a.name, a.values, f" (zipped with {g[0].name})") for a in g[1:])
        axes.append(("seed", range(spec.replicas), " (replicas)"))
        blocks[name] = axes
    width = max(len(a[0]) for axes in blocks.values() for a in axes)
    lines, done = [], 0
    for name, axes in blocks.items():
        is_stored = [key in stored for key in plan.keys(name)]
        done += sum(is_stored)
        lines.append(f"{name}: {len(is_stored)} runs ({sum(is_stored)} stored)")
        for axis, values, note in axes:
            lines.append(f"  {axis:<{width}}  {len(values):>6}  {_span(values)}{note}")
    total = len(plan.runs)
    lines.append(f"total: {total} runs, {done} stored, {total - done} to compute")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_estimate(plan: Plan, stored: set[str], est: Estimate, cores: int | None = None) -> list[str]:
    """Lines of ``epmsweep plan`` on the estimated compute of the runs still to compute."""
    cores = cores or os.cpu_count() or 1
    todo = [k for k in plan.keys() if k not in stored]
    cpu = est.seconds(todo)
    return [
        f"estimated compute: {cpu / 3600:.3g} core-hours ({_duration(cpu)} of CPU) for the {len(todo)} runs to "
        f"compute; about {_duration(est.wall_seconds(todo, cores))} on {cores} local cores",
        f"  (cost measured on {est.calibrated} of {est.points} parameter points by short real prefixes of their "
        f"runs, {est.calibration_seconds:.1f} s)",
    ]
