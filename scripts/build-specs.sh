#!/usr/bin/env bash
# Regenerates chain-specs/{dev,local}{,-raw}.json with the node's build-spec.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MLPOW_ROOT"
scripts/setup-system.sh
wasm_toolchain
lint_while_building
cargo build --workspace --all-targets --features mlpow-worker/test-hooks # the same build as scripts/test.sh
for chain in dev local; do
	"$CARGO_TARGET_DIR/debug/mlpow-node" build-spec --chain "$chain" --disable-default-bootnode >"chain-specs/$chain.json"
	"$CARGO_TARGET_DIR/debug/mlpow-node" build-spec --chain "$chain" --raw --disable-default-bootnode >"chain-specs/$chain-raw.json"
done
echo "chain-specs/ regenerated"
