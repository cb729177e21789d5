#!/usr/bin/env bash
# Registers, spills and shared memory of the CUDA kernels as ptxas builds
# them for each GPU generation, through NVRTC alone (no GPU, no CUDA
# toolkit): the figures BENCHMARKS.md quotes for the v2 transcript kernel.
# It compiles the same single source the worker hands NVRTC (kernels/v2.cu
# with mine.cu and blake3.cuh pasted in place of their #includes).
#
# usage: scripts/kernel-resources.sh [ARCH ...]   (default: sm_75 sm_80 sm_86 sm_89 sm_90 sm_100 sm_120)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
nvrtc_library
lib_dir="$("$MLPOW_ROOT/scripts/setup-nvrtc.sh")"
[ $# -gt 0 ] || set -- sm_75 sm_80 sm_86 sm_89 sm_90 sm_100 sm_120
python3 - "$lib_dir" "$MLPOW_ROOT/gpu-worker/kernels" "$@" <<'PY'
import ctypes, re, sys
lib_dir, kernels, archs = sys.argv[1], sys.argv[2], sys.argv[3:]
nvrtc = ctypes.CDLL(f"{lib_dir}/libnvrtc.so.13")
read = lambda name: open(f"{kernels}/{name}").read()
mine = read("mine.cu").replace('#include "blake3.cuh"', read("blake3.cuh"), 1)
source = read("v2.cu").replace('#include "mine.cu"', mine, 1).encode()
for arch in archs:
    prog = ctypes.c_void_p()
    if nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source, b"v2.cu", 0, None, None) != 0:
        sys.exit("nvrtcCreateProgram failed")
    opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", b"-default-device", b"--ptxas-options=-v"]
    rc = nvrtc.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    if rc != 0:
        sys.exit(f"{arch}: NVRTC failed:\n{log.value.decode()}")
    print(f"== {arch}")
    kernel = None
    for line in log.value.decode().splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            kernel = m.group(1)
        elif kernel and ("Used" in line or "spill" in line):
            print(f"{kernel:22} {line.split(':', 1)[-1].strip()}")
PY
