#!/usr/bin/env bash
# Installs NVRTC, NVIDIA's run-time CUDA compiler, from its PyPI wheel into a
# fixed directory outside the checkout, so that the worker's tests can compile
# kernels/*.cu on machines without a GPU or a CUDA toolkit. Prints the
# directory holding libnvrtc.so.13; scripts/env.sh puts it on
# LD_LIBRARY_PATH. Idempotent: a second run only prints the directory.
#
# The version is the worker's CUDA API level (cudarc feature cuda-13000).
set -euo pipefail
version=13.0.88
dir="${MLPOW_NVRTC_HOME:-$HOME/.cache/mlpow/nvrtc-$version}"
lib="$dir/nvidia/cu13/lib"
if [ ! -e "$lib/libnvrtc.so.13" ]; then
	python=$(command -v python3 || true)
	if [ -z "$python" ] || ! "$python" -m pip --version >/dev/null 2>&1; then
		echo "setup-nvrtc: python3 with pip is needed (apt-get install python3-pip)" >&2
		exit 1
	fi
	echo "setup-nvrtc: installing nvidia-cuda-nvrtc==$version into $dir" >&2
	"$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
		--target "$dir" "nvidia-cuda-nvrtc==$version" >&2
fi
[ -e "$lib/libnvrtc.so.13" ] || { echo "setup-nvrtc: no libnvrtc.so.13 under $dir" >&2; exit 1; }
echo "$lib"
