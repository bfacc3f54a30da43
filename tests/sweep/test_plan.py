"""Keys and seeds: stable, and dependent only on what determines a run."""

import itertools
import math
from dataclasses import asdict

import numpy as np
import pytest
from conftest import small_spec
from epmsweep.sweep import make_plan, parse_spec
from epmsweep.sweep.estimate import points_of
from epmsweep.sweep.plan import Run, _primary, run_key, sorted_order
from epmsweep.sweep.spec import axis_groups


def keyed(spec: dict) -> dict:
    return {(r.protocol, tuple(sorted(r.coords.items()))): r for r in make_plan(parse_spec(spec)).runs}


def test_keys_are_unique_and_stable():
    a, b = keyed(small_spec()), keyed(small_spec())
    assert len({r.key for r in a.values()}) == len(a)
    assert {k: r.key for k, r in a.items()} == {k: r.key for k, r in b.items()}


def test_a_run_keeps_key_and_seed_when_the_sweep_grows():
    """Adding rates, stresses or a sweep name changes nothing for the runs already there."""
    small = keyed(small_spec())
    grown = keyed(small_spec(name="other", imposed_rate={"shear_rate": [0.003, 0.01, 0.03], "strain_end": 0.3,
                                                          "n_records": 10, "snapshot_strains": [0.3]}))
    for coords, run in small.items():
        assert grown[coords].key == run.key
        assert grown[coords].dynamics_seed.spawn_key == run.dynamics_seed.spawn_key


def test_changing_a_parameter_or_seed_changes_the_key():
    base = keyed(small_spec())
    for change in ({"seed": 8}, {"model": {"L": 8, "tau_res": 2.5}}):
        other = keyed(small_spec(**change))
        assert not {r.key for r in base.values()} & {r.key for r in other.values()}


def test_replicas_share_initial_state_across_rates_not_across_replicas():
    runs = make_plan(parse_spec(small_spec())).runs
    rate = [r for r in runs if r.protocol == "imposed_rate" and r.state.label == "rejuvenated"]
    seeds = {(r.coords["seed"], r.state_seed.spawn_key) for r in rate}
    assert len(seeds) == 2  # one initial-state stream per replica, shared by both rates
    assert len({r.dynamics_seed.spawn_key for r in rate}) == len(rate)


def reference_runs(spec) -> list[Run]:
    """Every run expanded one by one, its model parameters and their fields made per run."""
    runs = []
    for name, (fixed, _) in spec.protocols.items():
        primary, groups = _primary(spec, name), axis_groups(spec)
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
            params = spec.model_parameters(overrides)
            fields = {"model": {**asdict(params), "thresholds": asdict(params.thresholds)}, "protocol": name,
                      "protocol_kwargs": {**own, **fixed}, "state": state.describe(), "coords": coords,
                      "base_seed": spec.seed}
            runs.append(Run(name, index, coords, spec.model, overrides, {**own, **fixed}, state, spec.seed,
                            run_key(fields)))
    return runs


def zipped_spec():
    """Both protocols, unsorted primary values, a zip group of two axes and a further axis."""
    return parse_spec(small_spec(replicas=3,
                                 imposed_rate={"shear_rate": [0.03, 0.01, 0.02], "strain_end": 0.3, "n_records": 10},
                                 axes={"tau_res": [2.5, 1.5, 2.0], "thresholds.shift": [0.2, 0.0, 0.1],
                                       "thresholds.scale": [0.6, 0.5]},
                                 zip=[["tau_res", "thresholds.shift"]]))


def test_runs_made_on_demand_equal_the_run_by_run_expansion():
    spec = zipped_spec()
    plan, reference = make_plan(spec), reference_runs(spec)
    assert list(plan.runs) == reference
    assert list(plan.runs) == list(plan.runs), "iterating twice gives the same runs"
    assert list(plan.keys()) == [r.key for r in reference]
    for name in spec.protocols:
        assert list(plan.protocol_runs(name)) == [r for r in reference if r.protocol == name]
        assert list(plan.protocol_runs(name, every=3)) == [r for r in reference if r.protocol == name][::3]
        assert list(plan.keys(name)) == [r.key for r in reference if r.protocol == name]


def test_parameter_points_are_the_runs_that_differ_by_replica_only():
    """The estimate's points, made from one run each, against grouping every run by its
    coordinates without the seed."""
    spec = zipped_spec()
    groups: dict[tuple, list[Run]] = {}
    for run in reference_runs(spec):
        groups.setdefault((run.protocol, run.index[:-1]), []).append(run)
    points = points_of(make_plan(spec))
    assert [(p.first, p.keys) for p in points] == [(g[0], tuple(r.key for r in g)) for g in groups.values()]
    assert all(len(p.keys) == spec.replicas for p in points)


def test_length_and_positions_of_the_runs():
    spec = zipped_spec()
    runs = make_plan(spec).runs
    sizes = {name: len(spec.states) * len(values or [None]) * 3 * 2 * spec.replicas
             for name, (_, values) in spec.protocols.items()}
    assert len(runs) == sum(sizes.values()) == 2 * 3 * 3 * 2 * 3 + 2 * 2 * 3 * 2 * 3
    assert sizes == {"imposed_rate": math.prod((2, 3, 3, 2, 3)), "imposed_stress": math.prod((2, 2, 3, 2, 3))}
    iterated = list(runs)
    assert [runs[i] for i in range(len(runs))] == iterated
    assert runs[-1] == iterated[-1] and runs[3:7] == tuple(iterated[3:7])
    for bad in (len(runs), -len(runs) - 1):
        with pytest.raises(IndexError, match=f"run index {bad} out of range"):
            runs[bad]


def test_a_runs_seeds_are_made_anew_each_time():
    """A run hashes its spawn keys once, but hands out a fresh SeedSequence each time: one that
    a caller spawned from never changes the seed of the run's next build (a retried run)."""
    run = make_plan(parse_spec(small_spec())).runs[0]
    first = run.state_seed
    first.spawn(3)
    again = run.state_seed
    assert again is not first and again.n_children_spawned == 0
    assert again.spawn_key == first.spawn_key and run.dynamics_seed.spawn_key != again.spawn_key
    params, state, _ = run.build()
    np.testing.assert_array_equal(run.state.build(params.L, again).threshold, state.threshold)
