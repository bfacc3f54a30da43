#!/usr/bin/env bash
# Debian packages that the deploy tests need: a single-node Slurm (slurm-wlm, munge), Open MPI (mpirun, and mpicc
# to build mpi4py against it) and openssl (TLS certificates). Installs only what is missing, as root or through
# sudo; anything it cannot install is an error.
set -euo pipefail
PACKAGES=(slurm-wlm munge openmpi-bin libopenmpi-dev openssl)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "error: missing packages ${missing[*]} and no apt-get to install them" >&2
    exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt=("${as_root[@]}" apt-get -qq -o DPkg::Lock::Timeout=600)
log=$(mktemp)
if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: could not install ${missing[*]}" >&2
    exit 1
fi
rm -f "$log"
