"""Sweep files: parsing and validation of the whole file before any compute.

A sweep file (YAML) names the model, the initial states, one block per protocol, the number of
replicas and the extra axes::

    name: demo
    seed: 2021                       # base seed of every random stream of the sweep
    replicas: 4                      # seeds axis: replica 0 .. 3
    model: {L: 32, tau_res: 2.0, thresholds: {shape: 1.5, scale: 0.57}}
    initial_states:
      rejuvenated: {kind: rejuvenated, shear_modulus: 15}
      E3: {kind: annealed, shift: 0.2, shear_modulus: 20}
      measured: {kind: file, path: states/e1.nc}      # relative to the sweep file
    imposed_rate:
      shear_rate: {logspace: [-3, -2, 3]}
      strain_end: 5.0
      n_records: 100
      snapshot_strains: [4.0, 5.0]
    imposed_stress:
      stress: [0.55, 0.6, 0.7]
      t_end: 1000.0
    axes:                            # optional model-parameter axes
      tau_res: [1.5, 2.0, 2.5]
      thresholds.shift: [0.0, 0.1, 0.2]
    zip: [[tau_res, thresholds.shift]]  # optional: axes that vary together

Values of axes are lists, scalars, ``{linspace: [start, stop, num]}`` or
``{logspace: [start_exponent, stop_exponent, num]}`` (base 10).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from epmsweep.engine import (
    ImposedRate,
    ImposedStress,
    InitialState,
    ModelParameters,
    ParameterError,
    ThresholdDistribution,
)

PROTOCOLS = {"imposed_rate": (ImposedRate, "shear_rate"), "imposed_stress": (ImposedStress, "stress")}
PRIMARY_DIMS = {"imposed_rate": "shear_rate", "imposed_stress": "stress_imposed"}
TOP_KEYS = {"name", "seed", "replicas", "model", "initial_states", "axes", "zip", *PROTOCOLS}
MODEL_KEYS = {f.name for f in dataclasses.fields(ModelParameters)} - {"thresholds"}
THRESHOLD_KEYS = {"shape", "scale", "shift"}
STATE_KINDS = {
    "rejuvenated": ({"shear_modulus"}, set()),
    "annealed": ({"shear_modulus", "shift"}, {"shift"}),
    "file": ({"path"}, {"path"}),
}
MAX_RUNS = 10_000_000


class SpecError(ParameterError):
    """A sweep file is malformed: names the file, the field and the reason."""

    def __init__(self, source: str, field: str, reason: str):
        self.source = source
        super().__init__(field, reason)
        self.args = (f"{source}: {field}: {reason}",)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class StateSpec:
    """One initial state of the sweep: synthetic (drawn per replica) or a file (same for all)."""

    label: str
    kind: str
    shear_modulus: float | None = None
    shift: float = 0.0
    path: str | None = None
    digest: str | None = None  # sha256 of the file's content

    def describe(self) -> dict:
        """Canonical description entering run keys."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("label", "path") and v is not None}

    def build(self, L: int, seed: np.random.SeedSequence) -> InitialState:
        """The InitialState of this description for a lattice of size L."""
        if self.kind == "file":
            return InitialState.load(self.path)
        mu = {} if self.shear_modulus is None else {"shear_modulus": self.shear_modulus}
        if self.kind == "rejuvenated":
            return InitialState.rejuvenated(L, seed, name=self.label, **mu)
        return InitialState.annealed(L, self.shift, seed, name=self.label, **mu)


@dataclass(frozen=True)
class Axis:
    """A swept model parameter: its dotted name (``tau_res``, ``thresholds.shift``) and values."""

    name: str
    values: tuple

    @property
    def dim(self) -> str:
        return self.name.replace(".", "_")


@dataclass(frozen=True)
class Spec:
    """A validated sweep file."""

    name: str
    seed: int
    replicas: int
    model: dict
    states: tuple[StateSpec, ...]
    protocols: dict  # protocol name -> (fixed keyword arguments, primary axis values)
    axes: tuple[Axis, ...]
    zip_groups: tuple[tuple[str, ...], ...]
    text: str = field(default="", repr=False)
    source: str = "<dict>"
    raw: dict = field(default_factory=dict, repr=False)  # the file's content, state paths made absolute

    def model_parameters(self, overrides: dict) -> ModelParameters:
        """ModelParameters of the base model with ``overrides`` ({dotted name: value}) applied."""
        return model_parameters(self.model, overrides)


def model_parameters(model: dict, overrides: dict) -> ModelParameters:
    """ModelParameters from a ``model`` block with ``overrides`` ({dotted name: value}) applied."""
    model = dict(model)
    thresholds = dict(model.pop("thresholds", {}))
    for name, value in overrides.items():
        if name.startswith("thresholds."):
            thresholds[name.split(".", 1)[1]] = value
        else:
            model[name] = value
    return ModelParameters(**model, thresholds=ThresholdDistribution(**thresholds))


def _error(source: str, where: str, reason: str) -> SpecError:
    return SpecError(source, where, reason)


def _mapping(value, source: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise _error(source, where, f"must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(mapping: dict, allowed: set, required: set, source: str, where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise _error(source, f"{where}.{key}" if where else str(key), f"unknown key; allowed: {sorted(allowed)}")
    for key in sorted(required - set(mapping)):
        raise _error(source, f"{where}.{key}" if where else key, "is required")


def _number(value, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(source, where, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise _error(source, where, f"must be finite, got {value!r}")
    return value


def expand_values(value: Any, source: str, where: str) -> tuple:
    """Axis values from a scalar, a list, ``{linspace: [a, b, n]}`` or ``{logspace: [a, b, n]}``."""
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("linspace", "logspace"):
            raise _error(source, where, "a range must be {linspace: [start, stop, num]} or {logspace: [...]}")
        kind, args = next(iter(value.items()))
        if not isinstance(args, list) or len(args) != 3:
            raise _error(source, f"{where}.{kind}", "must be a list [start, stop, num]")
        a, b = (_number(x, source, f"{where}.{kind}[{i}]") for i, x in enumerate(args[:2]))
        n = args[2]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100_000:
            raise _error(source, f"{where}.{kind}[2]", f"num must be an integer in 1..100000, got {n!r}")
        values = np.linspace(a, b, n) if kind == "linspace" else np.logspace(a, b, n)
        return tuple(float(v) for v in values)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise _error(source, where, "must not be empty")
    for i, v in enumerate(values):
        if isinstance(v, (dict, list)) or v is None:
            raise _error(source, f"{where}[{i}]", f"must be a scalar, got {v!r}")
    if len(set(map(repr, values))) != len(values):
        raise _error(source, where, "values must be distinct")
    return tuple(values)


def _states(raw, source: str, base_dir: Path) -> tuple[StateSpec, ...]:
    raw = _mapping(raw, source, "initial_states")
    if not raw:
        raise _error(source, "initial_states", "must name at least one initial state")
    states = []
    for label, desc in raw.items():
        where = f"initial_states.{label}"
        if not isinstance(label, str) or not label.isidentifier():
            raise _error(source, where, "label must be an identifier (letters, digits, _)")
        desc = _mapping(desc, source, where)
        kind = desc.get("kind", "file" if "path" in desc else None)
        if not isinstance(kind, str) or kind not in STATE_KINDS:
            raise _error(source, f"{where}.kind", f"must be one of {sorted(STATE_KINDS)}, got {kind!r}")
        allowed, required = STATE_KINDS[kind]
        _check_keys({k: v for k, v in desc.items() if k != "kind"}, allowed, required, source, where)
        if kind == "file":
            if not isinstance(desc["path"], str):
                raise _error(source, f"{where}.path", "must be a file path")
            path = (base_dir / desc["path"]).resolve()
            try:
                loaded = InitialState.load(path)
            except ParameterError as err:
                raise _error(source, f"{where}.path", str(err)) from None
            desc["path"] = str(path)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            states.append(StateSpec(label, kind, loaded.shear_modulus, path=str(path), digest=digest))
            continue
        mu = desc.get("shear_modulus")
        if mu is not None and (_number(mu, source, f"{where}.shear_modulus") <= 0):
            raise _error(source, f"{where}.shear_modulus", f"must be > 0, got {mu!r}")
        shift = desc.get("shift", 0.0)
        if _number(shift, source, f"{where}.shift") < 0:
            raise _error(source, f"{where}.shift", f"must be >= 0, got {shift!r}")
        states.append(StateSpec(label, kind, None if mu is None else float(mu), float(shift)))
    return tuple(states)


def _protocol(name: str, raw, dt: float, source: str) -> tuple[dict, tuple]:
    cls, primary = PROTOCOLS[name]
    raw = _mapping(raw, source, name)
    allowed = {f.name for f in dataclasses.fields(cls)}
    _check_keys(raw, allowed, {primary}, source, name)
    fixed = {k: v for k, v in raw.items() if k != primary}
    for key in ("snapshot_strains", "snapshot_times"):
        if key in fixed:
            fixed[key] = tuple(expand_values(fixed[key], source, f"{name}.{key}"))
    values = expand_values(raw[primary], source, f"{name}.{primary}")
    for i, v in enumerate(values):
        try:
            proto = cls(**{primary: v}, **fixed)
        except ParameterError as err:
            where = f"{name}.{primary}" if err.field == primary else f"{name}.{err.field}"
            raise _error(source, where + (f"[{i}]" if err.field == primary else ""), err.reason) from None
        except TypeError as err:
            raise _error(source, name, str(err)) from None
        try:
            proto.schedule(dt)
        except ParameterError as err:
            raise _error(source, f"{name}.{err.field}", err.reason) from None
    return fixed, values


def parse_spec(spec: str | Path | dict, source: str | None = None) -> Spec:
    """Validate a sweep (path to a YAML file, or a dict) and return a Spec.

    Raises SpecError naming the file, the field and the reason for the first problem found.
    """
    base_dir = Path.cwd()
    if isinstance(spec, dict):
        raw, text, source = spec, yaml.safe_dump(spec, sort_keys=False), source or "<dict>"
    else:
        path = Path(spec)
        source = source or str(path)
        if not path.is_file():
            raise _error(source, "<file>", "sweep file does not exist")
        text = path.read_text()
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise _error(source, "<file>", f"not valid YAML ({err})") from None
        base_dir = path.resolve().parent
    raw = _mapping(raw, source, "<top level>")
    _check_keys(raw, TOP_KEYS, {"name", "initial_states"}, source, "")
    name = raw["name"]
    if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
        raise _error(source, "name", f"must be a simple name (letters, digits, _ and -), got {name!r}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _error(source, "seed", f"must be an integer >= 0, got {seed!r}")
    replicas = raw.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 100_000:
        raise _error(source, "replicas", f"must be an integer in 1..100000, got {replicas!r}")

    model = dict(_mapping(raw.get("model", {}), source, "model"))
    _check_keys(model, MODEL_KEYS | {"thresholds"}, set(), source, "model")
    if "thresholds" in model:
        model["thresholds"] = dict(_mapping(model["thresholds"], source, "model.thresholds"))
        _check_keys(model["thresholds"], THRESHOLD_KEYS, set(), source, "model.thresholds")

    axes_raw = _mapping(raw.get("axes", {}), source, "axes")
    axes = []
    for axis_name, values in axes_raw.items():
        where = f"axes.{axis_name}"
        head, _, tail = str(axis_name).partition(".")
        if not ((head in MODEL_KEYS and not tail) or (head == "thresholds" and tail in THRESHOLD_KEYS)):
            raise _error(source, where, f"unknown model parameter; allowed: {sorted(MODEL_KEYS)} or thresholds.*")
        axes.append(Axis(axis_name, expand_values(values, source, where)))

    spec = Spec(name, seed, replicas, model, (), {}, tuple(axes), (), text, source)
    try:
        base = spec.model_parameters({})
    except ParameterError as err:
        raise _error(source, f"model.{err.field}", err.reason) from None
    except TypeError as err:
        raise _error(source, "model", str(err)) from None
    for axis in axes:
        for i, v in enumerate(axis.values):
            try:
                spec.model_parameters({axis.name: v})
            except ParameterError as err:
                raise _error(source, f"axes.{axis.name}[{i}]", err.reason) from None

    states_raw = _mapping(raw["initial_states"], source, "initial_states")
    raw = {**raw, "initial_states": {k: dict(v) if isinstance(v, dict) else v for k, v in states_raw.items()}}
    states = _states(raw["initial_states"], source, base_dir)
    sizes = {base.L} | {v for a in axes if a.name == "L" for v in a.values}
    for st in states:
        if st.kind == "file" and InitialState.load(st.path).L not in sizes:
            raise _error(source, f"initial_states.{st.label}.path", f"map size does not match L = {sorted(sizes)}")

    protocols = {name: _protocol(name, raw[name], base.dt, source) for name in PROTOCOLS if name in raw}
    if not protocols:
        raise _error(source, "<top level>", f"must contain at least one protocol block: {sorted(PROTOCOLS)}")

    zip_groups = []
    seen: set[str] = set()
    names = {a.name for a in axes}
    for gi, group in enumerate(raw.get("zip", []) or []):
        where = f"zip[{gi}]"
        if not isinstance(group, list) or len(group) < 2:
            raise _error(source, where, "must be a list of at least two axis names")
        for axis_name in group:
            if axis_name not in names:
                raise _error(source, where, f"{axis_name!r} is not an axis under 'axes'")
            if axis_name in seen:
                raise _error(source, where, f"{axis_name!r} is already in another zip group")
            seen.add(axis_name)
        lengths = {len(next(a for a in axes if a.name == n).values) for n in group}
        if len(lengths) != 1:
            raise _error(source, where, f"zipped axes must have equal lengths, got {sorted(lengths)}")
        zip_groups.append(tuple(group))

    spec = dataclasses.replace(spec, states=states, protocols=protocols, zip_groups=tuple(zip_groups), raw=raw)
    n_runs = count_runs(spec)
    if n_runs > MAX_RUNS:
        raise _error(source, "<top level>", f"expands to {n_runs} runs, more than {MAX_RUNS}")
    return spec


def axis_groups(spec: Spec) -> list[tuple[Axis, ...]]:
    """Model-parameter axes grouped into dimensions: each zip group is one dimension."""
    groups, done = [], set()
    for axis in spec.axes:
        if axis.name in done:
            continue
        group = next((g for g in spec.zip_groups if axis.name in g), (axis.name,))
        members = tuple(a for a in spec.axes if a.name in group)
        done.update(group)
        groups.append(members)
    return groups


def count_runs(spec: Spec) -> int:
    per_protocol = len(spec.states) * spec.replicas * math.prod(len(g[0].values) for g in axis_groups(spec))
    return sum(len(values) * per_protocol for _, values in spec.protocols.values())
