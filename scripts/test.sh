#!/usr/bin/env bash
# Runs every test of the project: the README's test command, and what CI runs.
# Usage: scripts/test.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MLPOW_ROOT"
total_start=$SECONDS

step "Set-up: system tools, Wasm toolchain, NVRTC (compiles the CUDA kernels; no GPU needed)"
scripts/setup-system.sh
wasm_toolchain
echo "wasm32 builds use: ${WASM_CARGO[*]}"
nvrtc_library
echo "NVRTC: ${LD_LIBRARY_PATH%%:*}"
target_dir_space

step "Formatting (cargo fmt --check)"
cargo fmt --all --check

# The worker's test-only CUDA entry points (feature `test-hooks`) are on
# for every step, so that the GPU tests are built and linted too, and the
# steps share one build.
features=(--features mlpow-worker/test-hooks)

step "Build every crate and binary, linted as they compile (clippy on the workspace's crates, -D warnings)"
# One compilation for lint and build (see lint_while_building in env.sh);
# the steps after it keep the same settings, so nothing is rebuilt.
lint_while_building
cargo build --workspace --all-targets "${features[@]}"

step "Unit, property, golden-vector and end-to-end tests"
if cargo nextest --version >/dev/null 2>&1; then
	# (No doctests yet: nextest does not run them; add `cargo test --doc` when some exist.)
	cargo nextest run --workspace --no-fail-fast "${features[@]}"
else
	cargo test --workspace "${features[@]}"
fi

step "Client end-to-end tests (e2e/: an independent JS puzzle v2 from SPEC-v2.md against its vectors, an independent JS miner through the pool, @polkadot/api on the dev and local chains, polkadot-api past block 200)"
(
	cd e2e
	npm ci --no-audit --no-fund --loglevel=error
	MLPOW_NODE_BIN="$CARGO_TARGET_DIR/debug/mlpow-node" MLPOW_WORKER_BIN="$CARGO_TARGET_DIR/debug/mlpow-worker" \
		MLPOW_POOL_BIN="$CARGO_TARGET_DIR/debug/mlpow-pool" npm test
)

step "Useful mode end-to-end (clients/python: two nodes on dev-v2, a worker's job API, the Python client, a real model)"
python_env
MLPOW_NODE_BIN="$CARGO_TARGET_DIR/debug/mlpow-node" MLPOW_WORKER_BIN="$CARGO_TARGET_DIR/debug/mlpow-worker" \
	python3 -m unittest discover -s clients/python/tests -v

step "The miner inside a Python process (gpu-worker/python: the mlpow package, two nodes on dev-v2, a pool)"
MLPOW_NODE_BIN="$CARGO_TARGET_DIR/debug/mlpow-node" MLPOW_POOL_BIN="$CARGO_TARGET_DIR/debug/mlpow-pool" \
	python3 -m unittest discover -s gpu-worker/python/tests -v

step "Multi-node network under zombienet (zombienet/: 3 nodes, 2 miners, a kill and restart)"
(
	cd zombienet
	npm ci --no-audit --no-fund --loglevel=error
	net_dir=$(mktemp -d "${TMPDIR:-/tmp}/mlpow-zombienet.XXXXXX")
	if MLPOW_NODE_BIN="$CARGO_TARGET_DIR/debug/mlpow-node" MLPOW_WORKER_BIN="$CARGO_TARGET_DIR/debug/mlpow-worker" \
		npx zombienet --provider native --spawn-concurrency 1 --logType text --dir "$net_dir/network" --force \
		test network.zndsl; then
		rm -rf "$net_dir"
	else
		echo "zombienet failed; the nodes' logs are in $net_dir/network/logs" >&2
		exit 1
	fi
)

step "The runtime-benchmarks and try-runtime features (clippy on the runtime; the pallet's benchmarks as tests)"
# Native only (SKIP_WASM_BUILD): the features change what the runtime
# compiles, and this keeps them compiling; the Wasm build with them is
# what `benchmark pallet` and try-runtime-cli would make.
SKIP_WASM_BUILD=1 cargo clippy -p mlpow-runtime --features runtime-benchmarks,try-runtime -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
	cargo nextest run -p pallet-mlpow --features runtime-benchmarks,try-runtime --no-fail-fast
else
	cargo test -p pallet-mlpow --features runtime-benchmarks,try-runtime
fi

step "Consensus primitives build no_std for wasm32"
"${WASM_CARGO[@]}" build -p mlpow-primitives --no-default-features --target wasm32-unknown-unknown --release

step ""
echo "all tests passed in $((SECONDS - total_start))s (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
