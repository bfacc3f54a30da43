"""Shared fixtures: a real distributed LocalCluster with worker processes, and small sweep files.

Reliability tests record their figures with ``record_figure``; at the end of a session that ran
them, ``tests/RELIABILITY.md`` is rewritten from those figures.
"""

import math
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from distributed import Client, LocalCluster


@pytest.fixture(scope="session")
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0") as c,
        Client(c) as cl,
    ):
        yield cl


def small_spec(name: str = "small", **overrides) -> dict:
    """A sweep of both protocols on an 8 x 8 lattice: 2 rates x 2 states x 2 replicas + 2 stresses x 2 x 2."""
    spec = {
        "name": name,
        "seed": 7,
        "replicas": 2,
        "model": {"L": 8},
        "initial_states": {"rejuvenated": {"kind": "rejuvenated"}, "annealed": {"kind": "annealed", "shift": 0.1}},
        "imposed_rate": {"shear_rate": [0.01, 0.03], "strain_end": 0.3, "n_records": 10, "snapshot_strains": [0.3]},
        "imposed_stress": {"stress": [0.4, 0.8], "t_end": 5.0, "n_records": 10},
    }
    spec.update(overrides)
    return spec


def write_spec(path, spec: dict):
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def glasses():
    """Inherent structures of N = 1024 prepared once with real LAMMPS (tests/micro): E1 > E2 > E3 in energy."""
    from epmsweep.micro import QuenchProtocol, prepare_glass

    protocols = {
        "E1": QuenchProtocol(T_melt=1.0, t_melt=50.0, rate=math.inf),  # instantaneous quench of the liquid
        "E2": QuenchProtocol(T_melt=1.0, t_melt=50.0, rate=math.inf, T_final=0.45, t_anneal=100.0),
        "E3": QuenchProtocol(T_melt=1.0, t_melt=50.0, rate=1e-2, T_final=0.4, t_anneal=1000.0),
    }
    return {name: prepare_glass(1024, protocol, seed=1) for name, protocol in protocols.items()}


FIGURES: dict[str, str] = {}


def record_figure(section: str, text: str) -> None:
    """Record a measured figure of a reliability test for RELIABILITY.md."""
    FIGURES[section] = text


def pytest_sessionfinish(session, exitstatus):
    """Update RELIABILITY.md with the figures of this session (others are kept from earlier runs)."""
    if not FIGURES or exitstatus != 0:
        return
    path = Path(__file__).parent / "RELIABILITY.md"
    figures = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith("- **") and "**: " in line:
                section, text = line[4:].split("**: ", 1)
                figures[section] = text
    figures.update(FIGURES)
    lines = [
        "# Reliability figures",
        "",
        "Written by the test suite (`tests/reliability/`); each line is what a passing test measured and asserted.",
        f"Last updated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    lines += [f"- **{section}**: {text}" for section, text in sorted(figures.items())]
    path.write_text("\n".join(lines) + "\n")
