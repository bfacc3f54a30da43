#!/usr/bin/env bash
# The deploy extra (dask-jobqueue, dask-mpi, mpi4py) in the environment of PYTHON, with mpi4py built from source
# against the system Open MPI, whose mpirun launches the MPI tests. Its headers are put first, so that no
# other MPI's mpi.h in the environment (an MPICH wheel installs one) is compiled in by mistake.
#   usage: deploy/install-python-packages.sh PYTHON
set -euo pipefail
py=${1:?usage: $0 PYTHON}
mpicc=${MPICC:-/usr/bin/mpicc}
cd "$(dirname "$0")/.."

uses_open_mpi() {
    "$py" -c "import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI
assert 'Open MPI' in MPI.Get_library_version()" 2>/dev/null
}
if ! uses_open_mpi; then
    incdirs=$("$mpicc" --showme:incdirs)
    MPI4PY_BUILD_MPICC=$mpicc CFLAGS="-I${incdirs// / -I}" \
        "$py" -m pip install -q --no-cache-dir --force-reinstall --no-deps --no-binary=mpi4py "mpi4py>=3.1"
fi
"$py" -m pip install -q -e ".[deploy]"
uses_open_mpi || { echo "error: mpi4py in $py does not use Open MPI ($mpicc)" >&2; exit 1; }
