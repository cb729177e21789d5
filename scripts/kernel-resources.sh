#!/usr/bin/env bash
# Registers, stack, spills and shared memory of the v2 transcript kernels
# (both entries of each, the wgmma ones on sm_90a) as ptxas builds them for
# each GPU generation, through NVRTC alone (no GPU, no CUDA toolkit): the
# figures BENCHMARKS.md quotes. It runs the test that checks them
# (gpu-worker/tests/kernels_compile.rs) on the very source the worker
# hands NVRTC, and prints its report.
#
# usage: scripts/kernel-resources.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
nvrtc_library
cd "$MLPOW_ROOT"
cargo nextest run -p mlpow-worker --test kernels_compile -E 'test(without_spilling)' --no-capture 2>&1 |
	grep -E '^sm_[0-9]+ ' | sed -e 's/ptxas *\.* *//' -e 's/ptxas info *: //'
