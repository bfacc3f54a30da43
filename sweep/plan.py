"""Expansion of a sweep into independent runs, each with a key and its own seeds.

A run's random streams depend only on the sweep's base seed and the run's coordinates (numpy
``SeedSequence`` spawn keys hashed from them), never on the worker that runs it or when: results
are bit-identical whatever the number of workers or the completion order. The initial state of
replica r of a synthetic state S is drawn from a stream keyed by (S, r) only, so every shear rate
or stress of one replica starts from the same map.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from epmsweep.engine import RESULT_FORMAT_VERSION, InitialState, ModelParameters, Protocol

from .spec import PRIMARY_DIMS, PROTOCOLS, Spec, StateSpec, axis_groups, model_parameters

STATE_STREAM, DYNAMICS_STREAM = 0, 1


def canonical_json(obj) -> str:
    """JSON with sorted keys, floats by repr and numpy scalars as Python types."""

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"cannot serialise {type(o).__name__}")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


def spawn_key(stream: int, coords: dict) -> tuple[int, ...]:
    """A SeedSequence spawn key: the stream id and four 32-bit words hashed from ``coords``."""
    digest = hashlib.sha256(canonical_json(coords).encode()).digest()
    return (stream, *(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)))


@dataclass(frozen=True)
class Run:
    """One lattice run: everything a worker needs to compute it, and where it goes.

    ``index`` is the run's position on its protocol's sweep dimensions (``dims`` of the plan).
    """

    protocol: str
    index: tuple[int, ...]
    coords: dict
    model: dict
    overrides: dict
    protocol_kwargs: dict
    state: StateSpec
    base_seed: int
    key: str

    @property
    def state_seed(self) -> np.random.SeedSequence:
        coords = {"initial_state": self.state.label, "seed": self.coords["seed"]}
        return np.random.SeedSequence(self.base_seed, spawn_key=spawn_key(STATE_STREAM, coords))

    @property
    def dynamics_seed(self) -> np.random.SeedSequence:
        coords = {"protocol": self.protocol, **self.coords}
        return np.random.SeedSequence(self.base_seed, spawn_key=spawn_key(DYNAMICS_STREAM, coords))

    def protocol_instance(self) -> Protocol:
        """The engine protocol of this run."""
        return PROTOCOLS[self.protocol][0](**self.protocol_kwargs)

    def build(self) -> tuple[ModelParameters, InitialState, Protocol]:
        """The engine's inputs for this run."""
        params = model_parameters(self.model, self.overrides)
        state = self.state.build(params.L, self.state_seed)
        return params, state, self.protocol_instance()


@dataclass(frozen=True)
class Plan:
    """All runs of a sweep, grouped by protocol, with the dimensions and coordinates of each group."""

    spec: Spec
    runs: tuple[Run, ...]
    dims: dict  # protocol -> tuple of dim names (sweep axes only)
    coords: dict  # protocol -> {dim or coordinate name: (dim, values)}


def run_key(run_fields: dict) -> str:
    """The key of a task: sha256 of its canonical fields and the result format (a new format, new keys)."""
    return hashlib.sha256(canonical_json({**run_fields, "result_format": RESULT_FORMAT_VERSION}).encode()).hexdigest()


def sorted_order(values: tuple) -> list[int]:
    """Positions of ``values`` in increasing order: assembled axes are sorted whatever the order
    in which the sweep file lists them (a sweep extended with a value between two others)."""
    return sorted(range(len(values)), key=lambda i: values[i])


def _primary(spec: Spec, name: str) -> list[tuple[str, str, tuple]]:
    """The protocol's own sweep axis as [(argument, dimension, values)], or [] without one."""
    _, arg = PROTOCOLS[name]
    return [(arg, PRIMARY_DIMS[name], spec.protocols[name][1])] if arg else []


def _protocol_runs(spec: Spec, name: str) -> Iterator[Run]:
    fixed, _ = spec.protocols[name]
    primary = _primary(spec, name)
    groups = axis_groups(spec)
    orders = [range(len(spec.states)), *(sorted_order(values) for _, _, values in primary)]
    orders += [sorted_order(g[0].values) for g in groups] + [range(spec.replicas)]
    for index in itertools.product(*(range(len(o)) for o in orders)):
        si, *pis, replica = (o[i] for o, i in zip(orders, index, strict=True))
        pis, gis = pis[: len(primary)], pis[len(primary) :]
        state = spec.states[si]
        overrides = {a.name: a.values[gi] for g, gi in zip(groups, gis, strict=True) for a in g}
        own = {arg: values[pi] for (arg, _, values), pi in zip(primary, pis, strict=True)}
        coords = {"initial_state": state.label, **{dim: own[arg] for arg, dim, _ in primary}}
        coords.update({k.replace(".", "_"): v for k, v in overrides.items()})
        coords["seed"] = replica
        kwargs = {**own, **fixed}
        params = spec.model_parameters(overrides)
        run_fields = {
            "model": {**asdict(params), "thresholds": asdict(params.thresholds)},
            "protocol": name,
            "protocol_kwargs": kwargs,
            "state": state.describe(),
            "coords": coords,
            "base_seed": spec.seed,
        }
        yield Run(name, tuple(index), coords, spec.model, overrides, kwargs, state, spec.seed, run_key(run_fields))


def make_plan(spec: Spec) -> Plan:
    """Expand a validated spec into its runs (full product; zipped axes vary together)."""
    runs, dims, coords = [], {}, {}
    groups = axis_groups(spec)
    for name in spec.protocols:
        primary = _primary(spec, name)
        dims[name] = ("initial_state", *(dim for _, dim, _ in primary), *(g[0].dim for g in groups), "seed")
        c = {
            "initial_state": ("initial_state", [s.label for s in spec.states]),
            **{dim: (dim, sorted(values)) for _, dim, values in primary},
            "seed": ("seed", list(range(spec.replicas))),
        }
        for g in groups:
            order = sorted_order(g[0].values)  # a zip group follows its first axis
            for a in g:
                c[a.dim] = (g[0].dim, [a.values[i] for i in order])
        coords[name] = c
        runs.extend(_protocol_runs(spec, name))
    return Plan(spec, tuple(runs), dims, coords)
