#!/usr/bin/env bash
# mlpow-node with the given arguments: the command zombienet runs for a node
# that only follows the chain. MLPOW_NODE_BIN overrides the binary (default:
# the debug build in $CARGO_TARGET_DIR or ~/.cache/mlpow/target).
set -euo pipefail
target="${CARGO_TARGET_DIR:-$HOME/.cache/mlpow/target}"
exec "${MLPOW_NODE_BIN:-$target/debug/mlpow-node}" "$@"
