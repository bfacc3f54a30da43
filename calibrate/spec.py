"""Calibration files: the parameters to fit, the fixed settings, the reference curves and the optimiser.

A calibration file (YAML 1.2) holds the blocks of a sweep file that fix everything but the fitted
parameters, and three of its own::

    name: fit_flow
    seed: 2021                 # base seed of the runs: every candidate uses the same replica seeds
    replicas: 3
    model: {L: 16, tau_pl: 1.0, tau_res: 2.0, thresholds: {shape: 1.5, scale: 0.57}}   # the start
    initial_states:
      rejuvenated: {kind: rejuvenated, shear_modulus: 15.0}
    imposed_rate: {strain_end: 3.0, n_records: 60, snapshot_strains: [2.0, 2.5, 3.0]}  # rates: from the references
    imposed_stress: {t_end: 200.0, n_records: 50}       # the stresses too
    parameters:                # model fields, thresholds.*, initial_states.<label>.shear_modulus|shift
      tau_res: {bounds: [1.0, 5.0]}
      thresholds.scale: {bounds: [0.4, 0.8]}
      tau_pl: {bounds: [0.3, 3.0], log: true}
    references:
      flow: {observable: flow_curve, path: flow.nc, weight: 1.0}
      loading: {observable: stress_strain, path: loading.csv, shear_rate: 0.01}
      creep: {observable: creep, path: creep.nc, stress: 0.6, initial_state: rejuvenated}
      p_gap: {observable: gap_distribution, path: gap.nc, shear_rate: 0.01}
    optimizer: {sampler: cmaes, evaluations: 48, population: 8, seed: 1}

The start of the search is the value of each parameter in ``model`` / ``initial_states`` (the
engine's default if not given), which must lie within its bounds. Reference paths are relative to
the file; ``initial_state`` may be left out when there is one. A ``threshold_distribution`` or
``gap_distribution`` reference is computed from the lattice snapshots of the imposed-rate runs, so
it needs ``imposed_rate.snapshot_strains`` (strains in the steady state; every imposed-rate run of a
candidate records them). Samplers: ``cmaes`` (CMA-ES from the start, step a quarter of each
range), ``tpe``, ``random``, and ``grid`` (``grid_points`` per parameter, equally spaced, in log
where ``log``). A ``quasistatic`` block is refused: no reference is computed from quasistatic
runs, so every candidate would compute them for nothing. Every problem of a file is reported at
once (``SpecError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from epmsweep.engine import DEFAULT_SHEAR_MODULUS, ParameterError
from epmsweep.sweep.spec import (
    MAX_SEED,
    MODEL_FIELDS,
    PROTOCOLS,
    THRESHOLD_FIELDS,
    Spec,
    SpecError,
    _check_keys,
    _number,
    _Problems,
    _read,
    dump_yaml,
    model_parameters,
    parse_spec,
)

from .reference import OBSERVABLES, Curve, ReferenceError, load_curve

PRIMARY = {name: PROTOCOLS[name][1] for name in sorted({o.protocol for o in OBSERVABLES.values()})}
"""The protocols the references are computed from, with the argument their rates or stresses set."""
UNUSED_PROTOCOLS = sorted(set(PROTOCOLS) - set(PRIMARY))
"""Sweep protocol blocks whose runs no reference uses: refused in a calibration file."""
SWEEP_KEYS = {"name", "seed", "replicas", "model", "initial_states", *PRIMARY}
TOP_KEYS = SWEEP_KEYS | {"parameters", "references", "optimizer"}
STATE_PARAMETERS = ("shear_modulus", "shift")
SAMPLERS = ("cmaes", "tpe", "random", "grid")
OPTIMIZER_DEFAULTS = {"sampler": "cmaes", "evaluations": 48, "population": 8, "seed": 0, "grid_points": 5}


@dataclass(frozen=True)
class Parameter:
    """A fitted parameter: dotted name, bounds (low < high), log scale, and the start of the search."""

    name: str
    low: float
    high: float
    log: bool
    start: float


@dataclass(frozen=True)
class Optimizer:
    sampler: str
    evaluations: int
    population: int
    seed: int
    grid_points: int


@dataclass(frozen=True)
class CalibrationSpec:
    """A validated calibration file."""

    name: str
    parameters: tuple[Parameter, ...]
    references: tuple[Curve, ...]
    optimizer: Optimizer
    sweep: dict = field(repr=False)  # the sweep blocks, state paths absolute
    source: str = "<dict>"
    text: str = field(default="", repr=False)

    def candidate(self, values: dict[str, float], name: str | None = None) -> Spec:
        """The sweep of one candidate: the fixed settings with ``values`` ({parameter: value}) set
        in the model and the initial states, and the references' rates and stresses."""
        return candidate_spec(self.sweep, self.references, values, name or self.name, self.source)


def candidate_spec(sweep: dict, references, values: dict, name: str, source: str) -> Spec:
    """The sweep of one candidate (see ``CalibrationSpec.candidate``); SpecError if it is invalid."""
    raw = {k: v for k, v in sweep.items() if k not in PRIMARY}
    model = {**raw.get("model", {}), "thresholds": dict(raw.get("model", {}).get("thresholds", {}))}
    states = {k: dict(v) for k, v in raw.get("initial_states", {}).items()}
    for pname, value in values.items():
        head, _, rest = pname.partition(".")
        if head == "initial_states":
            label, key = rest.split(".", 1)
            states[label][key] = float(value)
        elif head == "thresholds":
            model["thresholds"][rest] = float(value)
        else:
            model[pname] = float(value)
    raw.update(name=name, model=model, initial_states=states)
    for protocol, primary in PRIMARY.items():
        wanted = set()
        for curve in references:
            if curve.observable.protocol == protocol:
                wanted.update(curve.x.tolist() if curve.observable.at is None else [curve.at])
        if wanted:
            raw[protocol] = {**sweep.get(protocol, {}), primary: sorted(wanted)}
    return parse_spec(raw, source=source)


def _parameters(raw, sweep: dict, problems: _Problems) -> tuple[Parameter, ...]:
    block = problems.mapping(raw, "parameters")
    if block is None:
        return ()
    if not block:
        problems.add("parameters", "must name at least one parameter")
    states = sweep.get("initial_states") if isinstance(sweep.get("initial_states"), dict) else {}
    model = sweep.get("model") if isinstance(sweep.get("model"), dict) else {}
    try:
        start_params = model_parameters({k: v for k, v in model.items()}, {})
    except (ParameterError, TypeError):
        start_params = None  # reported with the sweep blocks
    out = []
    for pname, desc in block.items():
        where = f"parameters.{pname}"
        head, _, rest = str(pname).partition(".")
        start = None
        if head == "initial_states":
            label, _, key = rest.partition(".")
            state = states.get(label)
            if not isinstance(state, dict) or key not in STATE_PARAMETERS or state.get("kind") == "file":
                fields = "|".join(STATE_PARAMETERS)
                problems.add(where, f"an initial-state parameter is initial_states.<label>.{fields} of a "
                                    f"synthetic state; states: {sorted(states)}")  # fmt: skip
                continue
            start = state.get(key, DEFAULT_SHEAR_MODULUS if key == "shear_modulus" else 0.0)
        else:
            decl = MODEL_FIELDS.get(head) if not rest else THRESHOLD_FIELDS.get(rest) if head == "thresholds" else None
            if decl is None or decl.base is not float or decl.sequence:
                floats = sorted(n for n, d in MODEL_FIELDS.items() if d.base is float and not d.sequence)
                problems.add(where, f"not a real-valued model parameter; allowed: {floats}, thresholds.*, "
                                    "initial_states.<label>.shear_modulus|shift")  # fmt: skip
                continue
            if start_params is not None:
                start = getattr(start_params.thresholds if rest else start_params, rest or head)
        desc = problems.mapping(desc, where)
        if desc is None or not _check_keys(desc, {"bounds", "log"}, {"bounds"}, where, problems):
            continue
        bounds, log = desc["bounds"], desc.get("log", False)
        if not isinstance(log, bool):
            problems.add(f"{where}.log", f"must be true or false, got {log!r}")
            continue
        if not isinstance(bounds, list) or len(bounds) != 2:
            problems.add(f"{where}.bounds", f"must be [low, high], got {bounds!r}")
            continue
        low, high = (_number(b, f"{where}.bounds[{i}]", problems) for i, b in enumerate(bounds))
        if low is None or high is None:
            continue
        if not low < high:
            problems.add(f"{where}.bounds", f"low must be < high, got {bounds}")
            continue
        if log and low <= 0:
            problems.add(f"{where}.bounds", f"a log-scale parameter needs low > 0, got {low}")
            continue
        if start is not None and not low <= start <= high:
            problems.add(where, f"the start value {start} (from model / initial_states) is outside the bounds {bounds}")
            continue
        out.append(Parameter(str(pname), low, high, log, float(start if start is not None else low)))
    return tuple(out)


def _references(raw, sweep: dict, base_dir: Path, problems: _Problems) -> tuple[Curve, ...]:
    block = problems.mapping(raw, "references")
    if block is None:
        return ()
    if not block:
        problems.add("references", "must name at least one reference curve")
    states = sorted(sweep["initial_states"]) if isinstance(sweep.get("initial_states"), dict) else []
    out = []
    for rname, desc in block.items():
        where = f"references.{rname}"
        desc = problems.mapping(desc, where)
        if desc is None:
            continue
        observable = OBSERVABLES.get(desc.get("observable"))
        if observable is None:
            problems.add(f"{where}.observable", f"must be one of {sorted(OBSERVABLES)}, got {desc.get('observable')!r}")
            continue
        required = {"observable", "path", *([observable.at] if observable.at else [])}
        if not _check_keys(desc, required | {"weight", "initial_state"}, required, where, problems):
            continue
        if observable.protocol not in sweep:
            problems.add(where, f"a {observable.name} reference needs an {observable.protocol} block (run settings)")
        elif observable.distribution and not _snapshots(sweep[observable.protocol]):
            problems.add(where, f"a {observable.name} reference is computed from snapshots of the lattice: give "
                                f"{observable.protocol}.snapshot_strains (strains in the steady state)")  # fmt: skip
        weight = _number(desc.get("weight", 1.0), f"{where}.weight", problems)
        if weight is not None and weight <= 0:
            problems.add(f"{where}.weight", f"must be > 0, got {weight}")
        at = _number(desc[observable.at], f"{where}.{observable.at}", problems) if observable.at else None
        state = desc.get("initial_state", states[0] if len(states) == 1 else None)
        if state not in states:
            problems.add(f"{where}.initial_state", f"must be one of the initial_states {states}, got {state!r}")
        if not isinstance(desc["path"], str):
            problems.add(f"{where}.path", "must be a file path")
            continue
        try:
            curve = load_curve(base_dir / desc["path"], str(rname), observable, state, at, weight or 1.0)
        except ReferenceError as err:
            problems.add(f"{where}.path", f"{desc['path']}: {err}")
            continue
        out.append(curve)
    return tuple(out)


def _snapshots(block) -> bool:
    """True if a run block asks for snapshots (a non-empty ``snapshot_strains``)."""
    return isinstance(block, dict) and bool(block.get("snapshot_strains"))  # its form is checked by the sweep parser


def _coverage(curves: tuple[Curve, ...], sweep: dict, problems: _Problems) -> None:
    """The runs reach the end of every transient reference (strain_end, t_end); a distribution's
    snapshots are checked by the sweep parser."""
    for curve in curves:
        block = sweep.get(curve.observable.protocol)
        if curve.observable.at is None or curve.observable.distribution or not isinstance(block, dict):
            continue
        end_key = "strain_end" if curve.observable.x == "strain" else "t_end"
        end = block.get(end_key)
        if isinstance(end, (int, float)) and (curve.x[-1] > end or curve.x[0] < 0):
            problems.add(f"references.{curve.name}.path",
                         f"{curve.observable.x} spans [{curve.x[0]}, {curve.x[-1]}]: the runs cover "
                         f"[0, {end}] ({curve.observable.protocol}.{end_key})")  # fmt: skip


def _optimizer(raw, n_parameters: int, problems: _Problems) -> Optimizer:
    block = problems.mapping(raw, "optimizer") or {}
    _check_keys(block, set(OPTIMIZER_DEFAULTS), (), "optimizer", problems)
    values = {**OPTIMIZER_DEFAULTS, **{k: v for k, v in block.items() if k in OPTIMIZER_DEFAULTS}}
    if values["sampler"] not in SAMPLERS:
        problems.add("optimizer.sampler", f"must be one of {list(SAMPLERS)}, got {values['sampler']!r}")
    limits = {"evaluations": (1, 100_000), "population": (1, 10_000), "seed": (0, MAX_SEED), "grid_points": (2, 1000)}
    for key, (lo, hi) in limits.items():
        v = values[key]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            problems.add(f"optimizer.{key}", f"must be an integer in {lo}..{hi}, got {v!r}")
            values[key] = lo
    if values["sampler"] == "grid" and n_parameters and values["grid_points"] ** n_parameters > 100_000:
        problems.add("optimizer.grid_points", f"{values['grid_points']}^{n_parameters} grid points, more than 100000")
    return Optimizer(**values)


def parse_calibration(path: str | Path | dict, source: str | None = None) -> CalibrationSpec:
    """Validate a calibration (path to a YAML 1.2 file, or a dict) and return a CalibrationSpec.

    Raises SpecError naming the file and listing every problem (field and reason), those of the
    sweep blocks included (checked as the sweep of the start candidate).
    """
    base_dir, text = Path.cwd(), ""
    if isinstance(path, dict):
        raw, source = path, source or "<dict>"
    else:
        source = source or str(path)
        raw, text = _read(Path(path), source)
        base_dir = Path(path).resolve().parent
    problems = _Problems()
    if problems.mapping(raw, "<top level>") is None:
        raise SpecError(source, problems.items)
    for protocol in UNUSED_PROTOCOLS:
        if protocol in raw:
            problems.add(protocol, f"no calibration reference is computed from {protocol} runs (references use "
                                   f"{' and '.join(PRIMARY)} runs): leave the block out")  # fmt: skip
    known = {k: v for k, v in raw.items() if k not in UNUSED_PROTOCOLS}
    _check_keys(known, TOP_KEYS, {"name", "initial_states", "parameters", "references"}, "", problems)
    sweep = {k: v for k, v in raw.items() if k in SWEEP_KEYS}
    for protocol, primary in PRIMARY.items():
        if isinstance(sweep.get(protocol), dict) and primary in sweep[protocol]:
            problems.add(f"{protocol}.{primary}", "comes from the references; leave it out")
    parameters = _parameters(raw.get("parameters", {}), sweep, problems)
    references = _references(raw.get("references", {}), sweep, base_dir, problems)
    _coverage(references, sweep, problems)
    optimizer = _optimizer(raw.get("optimizer", {}), len(parameters), problems)
    name = raw.get("name") if isinstance(raw.get("name"), str) else "calibration"
    if references and not problems.items:  # the sweep blocks, checked by the sweep parser
        for corner in ("start", "low", "high"):
            values = {p.name: getattr(p, corner) for p in parameters}
            try:
                spec = candidate_spec(sweep, references, values, name, source)
            except SpecError as err:
                for where, reason in err.errors:
                    problems.add(where, reason if corner == "start" else f"{reason} (at the {corner} bounds)")
                continue
            if corner == "start":
                sweep = {**sweep, "initial_states": spec.raw["initial_states"]}  # state paths made absolute
    if problems.items:
        raise SpecError(source, problems.items)
    return CalibrationSpec(name, parameters, references, optimizer, sweep, source, text or dump_yaml(raw))
