"""Expansion of a sweep into independent runs, each with a key and its own seeds.

A run's random streams depend only on the sweep's base seed and the run's coordinates (numpy
``SeedSequence`` spawn keys hashed from them), never on the worker that runs it or when: results
are bit-identical whatever the number of workers or the completion order. The initial state of
replica r of a synthetic state S is drawn from a stream keyed by (S, r) only, so every shear rate
or stress of one replica starts from the same map.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from epmsweep.engine import RESULT_FORMAT_VERSION, InitialState, ModelParameters, Protocol

from .spec import PRIMARY_DIMS, PROTOCOLS, Spec, StateSpec, axis_groups, model_parameters

STATE_STREAM, DYNAMICS_STREAM = 0, 1


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot serialise {type(o).__name__}")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_json_default)


def canonical_json(obj) -> str:
    """JSON with sorted keys, floats by repr and numpy scalars as Python types."""
    return _CANONICAL.encode(obj)


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

    @functools.cached_property
    def _spawn_keys(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The spawn keys of the run's two seeds, hashed once (the seeds are made anew each time:
        a SeedSequence that spawns changes)."""
        state = {"initial_state": self.state.label, "seed": self.coords["seed"]}
        return spawn_key(STATE_STREAM, state), spawn_key(DYNAMICS_STREAM, {"protocol": self.protocol, **self.coords})

    @property
    def state_seed(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.base_seed, spawn_key=self._spawn_keys[0])

    @property
    def dynamics_seed(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.base_seed, spawn_key=self._spawn_keys[1])

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
    runs: Runs
    dims: dict  # protocol -> tuple of dim names (sweep axes only)
    coords: dict  # protocol -> {dim or coordinate name: (dim, values)}

    def keys(self, protocol: str | None = None) -> Iterator[str]:
        """The run keys in plan order (of protocol ``protocol`` only, if given), without making the runs."""
        return self.runs.keys(protocol)

    def protocol_runs(self, name: str, every: int = 1) -> Iterator[Run]:
        """The runs of protocol ``name`` in plan order (every ``every``-th run only: with the
        replica count, one run of each parameter point)."""
        return self.runs.protocol(name, every)


_SEED = "\0seed\0"  # stands for the seed in the JSON of a run's fields (see _ProtocolRuns._hashed)
_ENCODED_SEED = canonical_json(_SEED).encode()


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


class _ProtocolRuns:
    """The runs of one protocol, made on demand from their product indices (state, primary value,
    model-parameter groups, replica); the parts that do not depend on the replica, state or primary
    value are computed once per model-parameter point."""

    def __init__(self, spec: Spec, name: str):
        self.spec, self.name = spec, name
        self.fixed = spec.protocols[name][0]
        self.primary = _primary(spec, name)
        self.groups = axis_groups(spec)
        orders = [range(len(spec.states)), *(sorted_order(values) for _, _, values in self.primary)]
        self.orders = orders + [sorted_order(g[0].values) for g in self.groups] + [range(spec.replicas)]
        self.shape = tuple(len(o) for o in self.orders)
        self.size = math.prod(self.shape)
        self.states = [s.describe() for s in spec.states]
        self._points: dict[tuple, tuple[dict, dict]] = {}
        self._point_hash: tuple = (None, None, b"")  # the last point of _hashed and its pieces

    def _point(self, gis: tuple) -> tuple[dict, dict]:
        """Overrides and the model's key fields of the model-parameter point ``gis``."""
        if gis not in self._points:
            overrides = {a.name: a.values[gi] for g, gi in zip(self.groups, gis, strict=True) for a in g}
            params = self.spec.model_parameters(overrides)
            self._points[gis] = overrides, {**asdict(params), "thresholds": asdict(params.thresholds)}
        return self._points[gis]

    def _fields(self, index: tuple[int, ...]) -> tuple[tuple, dict, dict, dict]:
        """(state, primary value and model point positions), overrides, coordinates and protocol
        arguments of the run at ``index``."""
        si, *pis, replica = (o[i] for o, i in zip(self.orders, index, strict=True))
        pis, gis = tuple(pis[: len(self.primary)]), tuple(pis[len(self.primary) :])
        overrides, _ = self._point(gis)
        own = {arg: values[pi] for (arg, _, values), pi in zip(self.primary, pis, strict=True)}
        coords = {"initial_state": self.spec.states[si].label, **{dim: own[arg] for arg, dim, _ in self.primary}}
        coords.update({k.replace(".", "_"): v for k, v in overrides.items()})
        coords["seed"] = replica
        return (si, pis, gis), overrides, coords, {**own, **self.fixed}

    def _hashed(self, point: tuple, coords: dict, kwargs: dict) -> tuple:
        """The run key of ``point`` (state, primary value, model point) in two pieces, made once for
        consecutive runs of one point: the hash of the canonical JSON of the run's fields (see
        ``run_key``) up to the value of ``coords["seed"]``, and the JSON after it."""
        if self._point_hash[0] != point:
            fields = {"base_seed": self.spec.seed, "coords": {**coords, "seed": _SEED},
                      "model": self._point(point[2])[1], "protocol": self.name, "protocol_kwargs": kwargs,
                      "result_format": RESULT_FORMAT_VERSION, "state": self.states[point[0]]}  # fmt: skip
            before, after = canonical_json(fields).encode().split(_ENCODED_SEED)
            self._point_hash = point, hashlib.sha256(before), after
        return self._point_hash[1:]

    def _key(self, point: tuple, coords: dict, kwargs: dict) -> str:
        """``run_key`` of the run's fields, hashed from the pieces of ``_hashed``."""
        head, after = self._hashed(point, coords, kwargs)
        h = head.copy()
        h.update(b"%d%s" % (coords["seed"], after))
        return h.hexdigest()

    def run(self, index: tuple[int, ...]) -> Run:
        """The run at ``index`` (positions on the sorted sweep dimensions)."""
        point, overrides, coords, kwargs = self._fields(index)
        key = self._key(point, coords, kwargs)
        state = self.spec.states[point[0]]
        return Run(self.name, index, coords, self.spec.model, dict(overrides), kwargs, state, self.spec.seed, key)

    def keys(self) -> Iterator[str]:
        """The run keys in order, without making the runs: one hash copied per replica (``_key``
        inlined: a call per run is a third of the time of 10^6 keys)."""
        for index in itertools.product(*(range(n) for n in self.shape[:-1])):
            point, _, coords, kwargs = self._fields((*index, 0))
            head, after = self._hashed(point, coords, kwargs)
            for replica in range(self.spec.replicas):
                h = head.copy()
                h.update(b"%d%s" % (replica, after))
                yield h.hexdigest()

    def at(self, position: int) -> Run:
        """The run at ``position`` in this protocol's order (last dimension fastest)."""
        index = []
        for n in reversed(self.shape):
            position, i = divmod(position, n)
            index.append(i)
        return self.run(tuple(reversed(index)))

    def __iter__(self) -> Iterator[Run]:
        for index in itertools.product(*(range(n) for n in self.shape)):
            yield self.run(index)


class Runs(Sequence):
    """The runs of a plan in plan order (protocols in spec order, each over the product of its
    dimensions, last fastest), a read-only sequence making each Run when it is asked for."""

    def __init__(self, parts: list[_ProtocolRuns]):
        self._parts = parts

    def __len__(self) -> int:
        return sum(p.size for p in self._parts)

    def __iter__(self) -> Iterator[Run]:
        for part in self._parts:
            yield from part

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[j] for j in range(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"run index {i} out of range for a plan of {n} runs")
        i %= n
        for part in self._parts:
            if i < part.size:
                return part.at(i)
            i -= part.size
        raise AssertionError("unreachable")

    def subset(self, positions: list[int], keys: list[str]) -> RunSubset:
        """The runs at ``positions`` (their ``keys``), made only when asked for."""
        return RunSubset(self, positions, keys)

    def keys(self, protocol: str | None = None) -> Iterator[str]:
        """The keys of the runs in plan order (of protocol ``protocol`` only, if given)."""
        for part in self._parts:
            if protocol in (None, part.name):
                yield from part.keys()

    def protocol(self, name: str, every: int = 1) -> Iterator[Run]:
        """The runs of protocol ``name`` in plan order (every ``every``-th only)."""
        part = next((p for p in self._parts if p.name == name), None)
        if part is None:
            return iter(())
        return iter(part) if every == 1 else (part.at(i) for i in range(0, part.size, every))


class RunSubset(Sequence):
    """Some runs of a plan (those to compute, say), a read-only sequence making each Run when it is
    asked for, with their keys known without making them (``run_keys``): a 10^6-run sweep is
    never held as Run objects."""

    def __init__(self, runs: Runs, positions: list[int], keys: list[str]):
        self._runs, self._positions, self.run_keys = runs, positions, keys

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self._runs[p] for p in self._positions[i])
        return self._runs[self._positions[i]]


def make_plan(spec: Spec) -> Plan:
    """Expand a validated spec into its runs (full product; zipped axes vary together)."""
    dims, coords = {}, {}
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
    return Plan(spec, Runs([_ProtocolRuns(spec, name) for name in spec.protocols]), dims, coords)
