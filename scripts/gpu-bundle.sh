#!/usr/bin/env bash
# Builds what a GPU machine without Rust needs to test and benchmark the CUDA
# backend, into gpu-bundle/ (ignored by git; small enough to carry over):
#   mlpow-worker      the release worker
#   cuda_device       the GPU test binaries (tests/cuda_device.rs and
#   cuda_device_v2    tests/cuda_device_v2.rs), release
#   run.sh            finds the CUDA libraries, lists the devices, runs the
#                     GPU tests, then the benchmarks at the GPU preset: v1,
#                     v2, and useful mode (about 5 minutes in all)
# On the GPU machine: `bash gpu-bundle/run.sh` (extra arguments go to every
# benchmark, e.g. --devices 0).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MLPOW_ROOT"
out=gpu-bundle
rm -rf "$out" && mkdir -p "$out"
cargo build --release -p mlpow-worker --bin mlpow-worker
cp "$CARGO_TARGET_DIR/release/mlpow-worker" "$out/"
for test in cuda_device cuda_device_v2; do
	test_bin=$(cargo test --release -p mlpow-worker --features test-hooks --test "$test" --no-run \
		--message-format=json 2>/dev/null |
		python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$test")
	cp "$test_bin" "$out/$test"
done
strip "$out/mlpow-worker" "$out/cuda_device" "$out/cuda_device_v2" 2>/dev/null || true
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
echo "== GPU tests, puzzle v1"
timeout 300 "$here/cuda_device" --nocapture --test-threads 1 || status=1
echo "== GPU tests, puzzle v2"
timeout 300 "$here/cuda_device_v2" --nocapture --test-threads 1 || status=1
echo "== benchmark, puzzle v1 (GPU preset)"
timeout 120 "$here/mlpow-worker" --backend cuda --benchmark --bench-secs 5 "$@" || status=1
echo "== benchmark, puzzle v2 (GPU preset, r = 64)"
timeout 120 "$here/mlpow-worker" --backend cuda --benchmark --bench-secs 5 --bench-params 8192,4096,8192,16,64 "$@" ||
	status=1
echo "== benchmark, useful mode (jobs of the preset's shape)"
timeout 120 "$here/mlpow-worker" --backend cuda --benchmark --bench-secs 5 --bench-params 8192,4096,8192,16,64 \
	--bench-job 8192,4096,8192 "$@" || status=1
exit $status
RUN
chmod +x "$out/run.sh"
ls -la "$out"
