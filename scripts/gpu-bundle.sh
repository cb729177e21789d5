#!/usr/bin/env bash
# Builds what a GPU machine without Rust needs to test and benchmark the CUDA
# backend, into gpu-bundle/ (ignored by git; small enough to carry over):
#   mlpow-worker      the release worker
#   cuda_device       the GPU test binary (tests/cuda_device.rs), release
#   run.sh            finds the CUDA libraries, lists the devices, runs the
#                     GPU tests, then the benchmark at the GPU preset
# On the GPU machine: `bash gpu-bundle/run.sh` (extra arguments go to the
# benchmark, e.g. --bench-secs 20 --devices 0).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MLPOW_ROOT"
out=gpu-bundle
rm -rf "$out" && mkdir -p "$out"
cargo build --release -p mlpow-worker --bin mlpow-worker
cp "$CARGO_TARGET_DIR/release/mlpow-worker" "$out/"
test_bin=$(cargo test --release -p mlpow-worker --test cuda_device --no-run --message-format=json 2>/dev/null |
	python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda_device":
        print(m["executable"])')
cp "$test_bin" "$out/cuda_device"
strip "$out/mlpow-worker" "$out/cuda_device" 2>/dev/null || true
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
echo "== GPU tests"
"$here/cuda_device" --nocapture --test-threads 1
tests=$?
echo "== benchmark"
"$here/mlpow-worker" --backend cuda --benchmark "$@"
bench=$?
exit $((tests || bench))
RUN
chmod +x "$out/run.sh"
ls -la "$out"
