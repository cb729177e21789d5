#!/usr/bin/env bash
# Builds the `mlpow` Python package (gpu-worker/python) as a wheel with
# maturin, release profile: one abi3 wheel for CPython 3.9 and later on this
# platform. Installs maturin once into ~/.cache/mlpow. Not part of CI (the
# tests load the extension `cargo build` makes: python_env in env.sh).
# Usage: scripts/python-wheel.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR/wheels)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
version=1.16.0
tools="$HOME/.cache/mlpow/maturin-$version"
if [ ! -x "$tools/bin/maturin" ]; then
	python3 -m pip install --quiet --disable-pip-version-check --target "$tools" "maturin==$version"
fi
out="${1:-$CARGO_TARGET_DIR/wheels}"
PYTHONPATH="$tools" "$tools/bin/maturin" build --release \
	--manifest-path "$MLPOW_ROOT/gpu-worker/python/Cargo.toml" --out "$out"
ls -l "$out"/mlpow-*.whl
