#!/usr/bin/env bash
# Builds the Python package (crates/python) into an abi3 wheel with maturin,
# installs it into a fresh venv (target/pyvenv) with numpy and pytest, and
# runs its tests (crates/python/tests) against the PyTorch fixtures in
# tests/fixtures/. With --dask, also installs dask and distributed and runs
# the LocalCluster test of examples/python/dask_score.py.
#
#   bash tools/python_tests.sh [--dask]
#
# Needs python3 (3.9+) with venv and pip, and the package index.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/pyvenv
rm -rf "$venv"
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "maturin>=1.16,<2" "numpy>=1.21" pytest
if [ "${1:-}" = "--dask" ]; then
    "${pip[@]}" "dask>=2024.1" "distributed>=2024.1"
fi
rm -rf target/wheels
"$venv/bin/maturin" build --quiet --release -m crates/python/Cargo.toml -o target/wheels
"${pip[@]}" target/wheels/lstmrt-*.whl
# From outside the repository, so `import lstmrt` is the installed wheel.
cd /tmp
repo=$OLDPWD
"$repo/$venv/bin/python" -m pytest -q -p no:cacheprovider "$repo/crates/python/tests"
