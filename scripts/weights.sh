#!/usr/bin/env bash
# Generates pallets/mlpow/src/weights.rs from the pallet's benchmarks, the
# way the ecosystem does it, without linking the benchmark CLI into the node:
#
# 1. installs frame-omni-bencher 0.28.0 (the release that matches this
#    polkadot-sdk line: frame-benchmarking-cli 64) with `cargo install
#    --locked`, once (a long build: about 25 minutes on 2 cores; it needs
#    libclang, which this script installs with apt-get when it can);
# 2. builds the runtime with `runtime-benchmarks` into its own target
#    directory ($CARGO_TARGET_DIR-benchmarks), so the workspace's artifacts
#    are left alone (about 15 minutes cold);
# 3. runs every benchmark of `pallet_mlpow` on that runtime's Wasm with the
#    compiled executor, and writes weights.rs through the pallet's template
#    (pallets/mlpow/weight-template.hbs), then formats it.
#
# Not part of CI (it measures this machine). Commit the result with the
# machine it ran on, which the file's header names. Usage:
#   scripts/weights.sh            # steps 50, repeat 20
#   STEPS=2 REPEAT=1 scripts/weights.sh   # a quick check of the pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
wasm_toolchain

OMNI_VERSION=0.28.0
OMNI_ROOT="${OMNI_ROOT:-$HOME/.cache/mlpow/omni-bencher}"
OMNI="$OMNI_ROOT/bin/frame-omni-bencher"
STEPS="${STEPS:-50}"
REPEAT="${REPEAT:-20}"

if ! "$OMNI" --version 2>/dev/null | grep -q "$OMNI_VERSION"; then
	if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ! ldconfig -p | grep -q libclang; then
		step "Installing libclang (frame-omni-bencher's RocksDB bindings need it)"
		if [ "$(id -u)" -eq 0 ]; then
			apt-get install -y -qq libclang-dev >/dev/null
		elif command -v sudo >/dev/null; then
			sudo apt-get install -y -qq libclang-dev >/dev/null
		else
			echo "weights.sh: install libclang (Debian: libclang-dev) first" >&2
			exit 1
		fi
	fi
	step "Installing frame-omni-bencher $OMNI_VERSION into $OMNI_ROOT (once; a long build)"
	cargo install frame-omni-bencher --version "$OMNI_VERSION" --locked --root "$OMNI_ROOT" \
		--target-dir "$OMNI_ROOT/target"
	rm -rf "$OMNI_ROOT/target"
fi

BENCH_TARGET="$CARGO_TARGET_DIR-benchmarks"
step "Building the runtime with runtime-benchmarks (into $BENCH_TARGET)"
CARGO_TARGET_DIR="$BENCH_TARGET" cargo build -p mlpow-runtime --features runtime-benchmarks
WBUILD="$BENCH_TARGET/debug/wbuild/mlpow-runtime"
WASM=""
for name in mlpow_runtime.compact.compressed.wasm mlpow_runtime.compact.wasm mlpow_runtime.wasm; do
	if [ -f "$WBUILD/$name" ]; then
		WASM="$WBUILD/$name"
		break
	fi
done
test -n "$WASM" || { echo "weights.sh: no runtime Wasm in $WBUILD" >&2; exit 1; }

step "Benchmarking pallet_mlpow (steps $STEPS, repeat $REPEAT)"
"$OMNI" v1 benchmark pallet \
	--runtime "$WASM" \
	--pallet pallet_mlpow \
	--extrinsic '*' \
	--steps "$STEPS" \
	--repeat "$REPEAT" \
	--wasm-execution compiled \
	--heap-pages 4096 \
	--template pallets/mlpow/weight-template.hbs \
	--output pallets/mlpow/src/weights.rs
# The command as recorded in the file, without this machine's paths.
sed -i -e "s|$OMNI|frame-omni-bencher|" -e "s|$BENCH_TARGET|\$CARGO_TARGET_DIR-benchmarks|" pallets/mlpow/src/weights.rs
rustfmt --edition 2021 pallets/mlpow/src/weights.rs
step "Wrote pallets/mlpow/src/weights.rs; review the diff and commit it"
