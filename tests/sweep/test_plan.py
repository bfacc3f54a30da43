"""Keys and seeds: stable, and dependent only on what determines a run."""

from conftest import small_spec
from epmsweep.sweep import make_plan, parse_spec


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
