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
    quasistatic:                     # no axis of its own: one run per state, model point and replica
      strain_end: 2.0                # or n_avalanches: 5000
      snapshot_strains: [2.0]
    axes:                            # optional model-parameter axes
      tau_res: [1.5, 2.0, 2.5]
      thresholds.shift: [0.0, 0.1, 0.2]
    zip: [[tau_res, thresholds.shift]]  # optional: axes that vary together

Values of axes are lists, scalars, ``{linspace: [start, stop, num]}`` or
``{logspace: [start_exponent, stop_exponent, num]}`` (base 10). Files are read as YAML 1.2
(``1e-3`` is a number); a key given twice is an error.

The keys allowed in ``model``, ``model.thresholds`` and the protocol blocks, which are required,
their types and bounds are those the engine declares on ``ModelParameters``,
``ThresholdDistribution``, ``ImposedRate``, ``ImposedStress`` and ``Quasistatic``
(``engine.declarations``), and the rules that tie a protocol's fields together are its own: a value
is converted to its field's type (a float field gets floats, an integer field integers only).
Every problem of a file is collected and reported at once.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from dask.utils import format_bytes
from epmsweep.engine import (
    ImposedRate,
    ImposedStress,
    InitialState,
    ModelParameters,
    ParameterError,
    Quasistatic,
    ThresholdDistribution,
)
from epmsweep.engine.declarations import FieldDecl, check_value, fields_of
from epmsweep.engine.errors import InputChangedError
from epmsweep.engine.files import file_digest, probe_netcdf
from epmsweep.engine.variables import LATTICE, SNAPSHOT, VARIABLES
from ruamel.yaml import YAML, MappingNode, SequenceNode
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError

from .settings import how_to_raise, setting_bytes, setting_int, setting_seconds

PROTOCOLS = {cls.name: (cls, arg) for cls, arg in ((ImposedRate, "shear_rate"), (ImposedStress, "stress"),
                                                   (Quasistatic, None))}  # fmt: skip
"""Protocol blocks: name -> (engine protocol, the argument that is its sweep axis; None: no axis of its own)."""
PRIMARY_DIMS = {name: cls.primary_dim for name, (cls, _) in PROTOCOLS.items()}
"""The dimension of each protocol's own sweep axis (None for ``quasistatic``)."""
TOP_KEYS = {"name", "seed", "replicas", "model", "initial_states", "axes", "zip", *PROTOCOLS}
MODEL_FIELDS = {k: v for k, v in fields_of(ModelParameters).items() if k != "thresholds"}
THRESHOLD_FIELDS = fields_of(ThresholdDistribution)
MODEL_KEYS = set(MODEL_FIELDS)
THRESHOLD_KEYS = set(THRESHOLD_FIELDS)
STATE_KINDS = {
    "rejuvenated": ({"shear_modulus"}, set()),
    "annealed": ({"shear_modulus", "shift"}, {"shift"}),
    "file": ({"path"}, {"path"}),
}
MAX_SEED = 2**63 - 1  # stored as a signed 64-bit attribute
INVALID = object()  # a value that failed its check (its error is recorded)


def yaml_1_2() -> YAML:
    """The YAML 1.2 reader and writer of sweep files (plain Python types; duplicate keys rejected)."""
    return YAML(typ="safe", pure=True)


class SpecError(ParameterError):
    """A sweep file is malformed: names the file and lists every problem found, one ``field: reason`` a line.

    Attributes
    ----------
    source : str
        The file (or ``<dict>``).
    errors : list of (field, reason)
        Every problem of the file; ``field`` and ``reason`` are those of the first.
    """

    def __init__(self, source: str, errors: str | list[tuple[str, str]], reason: str | None = None):
        if isinstance(errors, str):
            errors = [(errors, reason)]
        self.source = source
        self.errors = list(errors)
        super().__init__(*self.errors[0])
        self.args = ("\n".join(f"{source}: {f}: {r}" for f, r in self.errors),)

    def __str__(self) -> str:
        return self.args[0]


class _Problems:
    """The problems found so far in one file, in the order found, each once."""

    def __init__(self):
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, reason: str) -> None:
        if (where, reason) not in self.items:
            self.items.append((where, reason))

    def check(self, where: str, decl: FieldDecl, value):
        """``value`` converted to its declared type, or INVALID (the problem recorded)."""
        try:
            return check_value(where, decl, value)
        except ParameterError as err:
            self.add(err.field, err.reason)
            return INVALID

    def mapping(self, value, where: str) -> dict | None:
        if isinstance(value, dict):
            return value
        self.add(where, f"must be a mapping, got {type(value).__name__}")
        return None


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
            return InitialState.load(self.path, digest=self.digest)
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
    protocols: dict  # protocol name -> (fixed keyword arguments, primary axis values; () without an axis)
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


def _check_keys(mapping: dict, allowed, required, where: str, problems: _Problems) -> bool:
    """Record unknown and missing keys; True if there were none."""
    ok = True
    for key in mapping:
        if key not in allowed:
            problems.add(f"{where}.{key}" if where else str(key), f"unknown key; allowed: {sorted(allowed)}")
            ok = False
    for key in sorted(set(required) - set(mapping)):
        problems.add(f"{where}.{key}" if where else key, "is required")
        ok = False
    return ok


def _declared_block(raw, decls: dict[str, FieldDecl], where: str, problems: _Problems, skip=()) -> dict | None:
    """The keys of a block checked and converted by their declarations (keys in ``skip`` are left to the
    caller); None if the block has any problem (recorded)."""
    block = problems.mapping(raw, where)
    if block is None:
        return None
    required = {k for k, d in decls.items() if d.required and k not in skip}
    ok = _check_keys({k: v for k, v in block.items() if k not in skip}, set(decls), required, where, problems)
    out = {}
    for key, value in block.items():
        if key in skip or key not in decls:
            continue
        out[key] = problems.check(f"{where}.{key}", decls[key], value)
        ok = ok and out[key] is not INVALID
    return out if ok else None


def _range(value: dict, where: str, decl: FieldDecl, problems: _Problems) -> list | None:
    if len(value) != 1 or next(iter(value)) not in ("linspace", "logspace"):
        problems.add(where, "a range must be {linspace: [start, stop, num]} or {logspace: [...]}")
        return None
    kind, args = next(iter(value.items()))
    if not isinstance(args, list) or len(args) != 3:
        problems.add(f"{where}.{kind}", "must be a list [start, stop, num]")
        return None
    ends = []
    for i, x in enumerate(args[:2]):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            problems.add(f"{where}.{kind}[{i}]", f"must be a finite number, got {x!r}")
        ends.append(x)
    n = args[2]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100_000:
        problems.add(f"{where}.{kind}[2]", f"num must be an integer in 1..100000, got {n!r}")
        return None
    if len(ends) != 2 or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in ends):
        return None
    with np.errstate(over="ignore"):
        values = [float(v) for v in (np.linspace if kind == "linspace" else np.logspace)(*ends, n)]
    if decl.base is int:
        if not all(v.is_integer() for v in values):
            problems.add(where, f"{kind} gives non-integer values for the integer parameter: {values}")
            return None
        values = [int(v) for v in values]
    return values


def expand_values(value: Any, where: str, decl: FieldDecl, problems: _Problems) -> tuple | None:
    """Axis values from a scalar, a list, ``{linspace: [a, b, n]}`` or ``{logspace: [a, b, n]}``,
    converted to the declared type of the field and distinct; None if any is invalid (recorded)."""
    if not decl.numeric:
        problems.add(where, f"{decl.name} takes {decl.type_name}: only numeric parameters can be swept "
                            "(run one sweep per value)")  # fmt: skip
        return None
    if isinstance(value, dict):
        values = _range(value, where, decl, problems)
        if values is None:
            return None
    else:
        values = value if isinstance(value, list) else [value]
    if not values:
        problems.add(where, "must not be empty")
        return None
    out, ok = [], True
    for i, v in enumerate(values):
        if isinstance(v, (dict, list)) or v is None:
            problems.add(f"{where}[{i}]", f"must be a scalar, got {v!r}")
            ok = False
            continue
        out.append(problems.check(f"{where}[{i}]", decl, v))
        ok = ok and out[-1] is not INVALID
    if not ok:
        return None
    if len(set(out)) != len(out):
        problems.add(where, f"values must be distinct, got {out}")
        return None
    return tuple(out)


def _model(raw, problems: _Problems) -> tuple[dict | None, ModelParameters | None]:
    """The ``model`` block, converted ({field: value, thresholds: {...}}), and its ModelParameters."""
    model = _declared_block(raw, MODEL_FIELDS, "model", problems, skip=("thresholds",))
    thresholds = {}
    if isinstance(raw, dict) and "thresholds" in raw:
        thresholds = _declared_block(raw["thresholds"], THRESHOLD_FIELDS, "model.thresholds", problems)
    if model is None or thresholds is None:
        return None, None
    if thresholds:
        model["thresholds"] = thresholds
    try:
        return model, model_parameters(model, {})
    except ParameterError as err:
        problems.add(f"model.{err.field}", err.reason)
        return None, None


def _axis_decl(name) -> FieldDecl | None:
    head, _, tail = str(name).partition(".")
    if head in MODEL_FIELDS and not tail:
        return MODEL_FIELDS[head]
    if head == "thresholds" and tail in THRESHOLD_FIELDS:
        return THRESHOLD_FIELDS[tail]
    return None


def _axes(raw, model: dict | None, problems: _Problems) -> tuple[Axis, ...]:
    axes_raw = problems.mapping(raw, "axes") or {}
    axes = []
    for axis_name, value in axes_raw.items():
        where = f"axes.{axis_name}"
        decl = _axis_decl(axis_name)
        if decl is None:
            problems.add(where, f"unknown model parameter; allowed: {sorted(MODEL_KEYS)} or thresholds.*")
            continue
        values = expand_values(value, where, decl, problems)
        if values is None:
            continue
        axes.append(Axis(axis_name, values))
        if model is None:
            continue
        for i, v in enumerate(values):  # rules that tie fields together (dt against the time scales)
            try:
                model_parameters(model, {axis_name: v})
            except ParameterError as err:
                problems.add(f"{where}[{i}]", err.reason)
    return tuple(axes)


def _number(value, where: str, problems: _Problems) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.add(where, f"must be a finite number, got {value!r}")
        return None
    return float(value)


def _states(raw, base_dir: Path, sizes: set[int], problems: _Problems) -> tuple[StateSpec, ...]:
    """The initial states; ``raw`` (a copy of the file's block) gets absolute paths."""
    states = []
    for label, desc in raw.items():
        where = f"initial_states.{label}"
        if not isinstance(label, str) or not label.isidentifier():
            problems.add(where, "label must be an identifier (letters, digits, _)")
            continue
        desc = problems.mapping(desc, where)
        if desc is None:
            continue
        kind = desc.get("kind", "file" if "path" in desc else None)
        if not isinstance(kind, str) or kind not in STATE_KINDS:
            problems.add(f"{where}.kind", f"must be one of {sorted(STATE_KINDS)}, got {kind!r}")
            continue
        allowed, required = STATE_KINDS[kind]
        if not _check_keys({k: v for k, v in desc.items() if k != "kind"}, allowed, required, where, problems):
            continue
        if kind == "file":
            if not isinstance(desc["path"], str):
                problems.add(f"{where}.path", "must be a file path")
                continue
            path = (base_dir / desc["path"]).resolve()
            try:
                if path.is_file():
                    probe_netcdf(path, "initial-state file", timeout=setting_seconds("open-timeout"))
                content = path.read_bytes() if path.is_file() else b""
                loaded = InitialState.load(path, digest=file_digest(content))
            except (ParameterError, InputChangedError) as err:
                problems.add(f"{where}.path", str(err))
                continue
            desc["path"] = str(path)
            if sizes and loaded.L not in sizes:
                problems.add(f"{where}.path", f"map size does not match L = {sorted(sizes)}")
            states.append(StateSpec(label, kind, loaded.shear_modulus, path=str(path), digest=file_digest(content)))
            continue
        mu = desc.get("shear_modulus")
        if mu is not None:
            mu = _number(mu, f"{where}.shear_modulus", problems)
            if mu is None:
                continue
            if mu <= 0:
                problems.add(f"{where}.shear_modulus", f"must be > 0, got {mu!r}")
                continue
        shift = _number(desc.get("shift", 0.0), f"{where}.shift", problems)
        if shift is None:
            continue
        if shift < 0:
            problems.add(f"{where}.shift", f"must be >= 0, got {shift!r}")
            continue
        states.append(StateSpec(label, kind, mu, shift))
    return tuple(states)


def run_output_bytes(protocol, n_records: int, n_snapshots: int, L: int) -> int:
    """Bytes of one run's output: ``n_records`` records of its series and ``n_snapshots`` snapshots
    of lattice fields (float64, and booleans as int8), as a worker holds them and the store writes them."""
    per_record = 8 * (len(protocol.series) + len(protocol.record_coords) + 1)
    per_snapshot = sum(
        L * L * (1 if v.dtype == "bool" else np.dtype(v.dtype).itemsize)
        for v in VARIABLES.values()
        if SNAPSHOT in v.dims and set(LATTICE) <= set(v.dims)
    )
    return per_record * n_records + (per_snapshot + 8) * n_snapshots


def planned_records(protocol, dt: float) -> tuple[int, int]:
    """(records, snapshots) a run of ``protocol`` writes at time step ``dt``; ParameterError if its
    schedule is impossible. A quasistatic run to ``strain_end`` counts no records: their number is
    known when it ends (at 64 bytes an avalanche, ~10^5 avalanches per unit strain at L = 256, far
    below any limit on the output)."""
    if hasattr(protocol, "schedule"):  # the time-stepped protocols
        schedule = protocol.schedule(dt)
        return len(schedule.record_steps), len(schedule.snapshot_steps)
    protocol.max_steps(dt)
    return protocol.n_avalanches or 0, len(set(protocol.snapshot_strains))


def _protocol(name: str, raw, dts: set[float], sizes: set[int], problems: _Problems) -> tuple[dict, tuple] | None:
    """(fixed keyword arguments, primary axis values) of a protocol block, or None (problems recorded);
    the values are () for a protocol without an axis of its own."""
    cls, primary = PROTOCOLS[name]
    decls = fields_of(cls)
    fixed = _declared_block(raw, decls, name, problems, skip=(primary,) if primary else ())
    values: tuple = ()
    if primary is not None:
        block = raw if isinstance(raw, dict) else {}
        if primary not in block:
            if isinstance(raw, dict):
                problems.add(f"{name}.{primary}", "is required")
            return None
        values = expand_values(block[primary], f"{name}.{primary}", decls[primary], problems)
    if fixed is None or values is None:
        return None
    ok, max_bytes, largest = True, setting_bytes("max-run-bytes"), max(sizes, default=2)
    points = [(f"{name}.{primary}[{i}]", {primary: v}) for i, v in enumerate(values)] if primary else [(name, {})]
    for where, point in points:  # rules that tie fields together, and the run's schedule and output size
        try:
            proto = cls(**point, **fixed)
            for dt in sorted(dts):
                size = run_output_bytes(proto, *planned_records(proto, dt), largest)
                if size > max_bytes:
                    problems.add(
                        where,
                        f"a run would write {format_bytes(size)} (L = {largest}, dt = {dt:g}), more than "
                        f"epmsweep.sweep.max-run-bytes = {format_bytes(max_bytes)}: fewer records or snapshots, "
                        f"or {how_to_raise('max-run-bytes', repr('64 GiB'))}",
                    )
                    ok = False
                    break
        except ParameterError as err:
            problems.add(where if err.field == primary else f"{name}.{err.field}", err.reason)
            ok = False
    return (fixed, values) if ok else None


def _duplicate_keys(text: str) -> list[tuple[str, str]]:
    """Every key given twice in one mapping of a YAML document, by dotted path, with its lines."""
    found = []

    def walk(node, path: str) -> None:
        if isinstance(node, MappingNode):
            seen: dict = {}
            for key_node, value_node in node.value:
                key = getattr(key_node, "value", None)
                key = key if isinstance(key, str) else str(key)
                where = f"{path}.{key}" if path else key
                line = key_node.start_mark.line + 1
                if key in seen:
                    found.append((where, f"duplicate key at line {line} (first given at line {seen[key]})"))
                else:
                    seen[key] = line
                walk(value_node, where)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    walk(yaml_1_2().compose(text), "")
    return found


def _read(path: Path, source: str) -> tuple[Any, str]:
    """The content of a sweep file (YAML 1.2) and its text; SpecError if it cannot be read."""
    if not path.is_file():
        raise SpecError(source, "<file>", "sweep file does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(source, "<file>", f"cannot be read as text ({err})") from None
    try:
        return yaml_1_2().load(text), text
    except DuplicateKeyError as err:
        duplicates = _duplicate_keys(text)
        line = err.problem_mark.line + 1 if err.problem_mark else "?"
        raise SpecError(source, duplicates or [("<file>", f"duplicate key at line {line}")]) from None
    except YAMLError as err:
        raise SpecError(source, "<file>", f"not valid YAML ({err})") from None


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj.item() if isinstance(obj, np.generic) else obj


def dump_yaml(obj) -> str:
    """``obj`` (dicts, lists or tuples of plain values) as YAML 1.2 text, block style."""
    out = io.StringIO()
    writer = yaml_1_2()
    writer.default_flow_style = False
    writer.dump(_plain(obj), out)
    return out.getvalue()


def parse_spec(spec: str | Path | dict, source: str | None = None) -> Spec:
    """Validate a sweep (path to a YAML 1.2 file, or a dict) and return a Spec.

    Raises SpecError naming the file and listing every problem found (field and reason).
    """
    base_dir = Path.cwd()
    if isinstance(spec, dict):
        raw, text, source = spec, None, source or "<dict>"
    else:
        path = Path(spec)
        source = source or str(path)
        raw, text = _read(path, source)
        base_dir = path.resolve().parent
    problems = _Problems()
    if problems.mapping(raw, "<top level>") is None:
        raise SpecError(source, problems.items)
    _check_keys(raw, TOP_KEYS, {"name", "initial_states"}, "", problems)
    name = raw.get("name", "")
    if "name" in raw and (not isinstance(name, str) or not name.replace("-", "_").isidentifier()):
        problems.add("name", f"must be a simple name (letters, digits, _ and -), got {name!r}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        problems.add("seed", f"must be an integer >= 0 and <= 2**63 - 1, got {seed!r}")
    replicas = raw.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 100_000:
        problems.add("replicas", f"must be an integer in 1..100000, got {replicas!r}")

    model, base = _model(raw.get("model", {}), problems)
    axes = _axes(raw.get("axes", {}), model, problems)
    axis_values = {a.name: a.values for a in axes}
    sizes = {base.L} | set(axis_values.get("L", ())) if base is not None else set()
    dts = {base.dt} | set(axis_values.get("dt", ())) if base is not None else set()

    states: tuple[StateSpec, ...] = ()
    states_raw = problems.mapping(raw.get("initial_states", {}), "initial_states")
    if states_raw is not None:
        states_raw = {k: dict(v) if isinstance(v, dict) else v for k, v in states_raw.items()}
        raw = {**raw, "initial_states": states_raw}
        if not states_raw and "initial_states" in raw:
            problems.add("initial_states", "must name at least one initial state")
        states = _states(states_raw, base_dir, sizes, problems)

    protocols = {}
    for pname in PROTOCOLS:
        if pname in raw:
            parsed = _protocol(pname, raw[pname], dts, sizes, problems)
            if parsed is not None:
                protocols[pname] = parsed
    if not any(pname in raw for pname in PROTOCOLS):
        problems.add("<top level>", f"must contain at least one protocol block: {sorted(PROTOCOLS)}")

    named = set(raw["axes"]) if isinstance(raw.get("axes"), dict) else set()
    zip_groups = _zip_groups(raw.get("zip", []), axes, named, problems)
    if problems.items:
        raise SpecError(source, problems.items)

    if text is None:
        text = dump_yaml(raw)
    spec = Spec(name, seed, replicas, model, states, protocols, axes, zip_groups, text, source, raw)
    n_runs, max_runs = count_runs(spec), setting_int("max-runs")
    if n_runs > max_runs:
        raise SpecError(
            source, "<top level>",
            f"expands to {n_runs} runs, more than epmsweep.sweep.max-runs = {max_runs}: "
            f"{how_to_raise('max-runs', n_runs)}",
        )  # fmt: skip
    return spec


def _zip_groups(raw, axes: tuple[Axis, ...], named: set, problems: _Problems) -> tuple[tuple[str, ...], ...]:
    """The zip groups; a group naming an axis that has its own problem is left out, not reported again."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("zip", f"must be a list of groups of axis names, got {raw!r}")
        return ()
    groups, seen = [], set()
    names = {a.name: a for a in axes}
    for gi, group in enumerate(raw):
        where = f"zip[{gi}]"
        if not isinstance(group, list) or len(group) < 2:
            problems.add(where, "must be a list of at least two axis names")
            continue
        ok = True
        for axis_name in group:
            if not isinstance(axis_name, str) or axis_name not in names:
                if not isinstance(axis_name, str) or axis_name not in named:
                    problems.add(where, f"{axis_name!r} is not an axis under 'axes'")
                ok = False
            elif axis_name in seen:
                problems.add(where, f"{axis_name!r} is already in another zip group")
                ok = False
            else:
                seen.add(axis_name)
        if not ok:
            continue
        lengths = {len(names[n].values) for n in group}
        if len(lengths) != 1:
            problems.add(where, f"zipped axes must have equal lengths, got {sorted(lengths)}")
            continue
        groups.append(tuple(group))
    return tuple(groups)


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
    return sum((len(values) if PROTOCOLS[name][1] else 1) * per_protocol
               for name, (_, values) in spec.protocols.items())  # fmt: skip
