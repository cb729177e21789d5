#!/usr/bin/env bash
# Starts a development chain: one `mlpow-node --dev` (fresh, temporary
# database) and one `mlpow-worker` mining for it, until Ctrl-C.
#
# Usage: scripts/dev.sh
#   MLPOW_RPC_PORT  node RPC port (default 9944)
#   MLPOW_THREADS   worker threads (default: all cores)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MLPOW_ROOT"

rpc_port="${MLPOW_RPC_PORT:-9944}"

step "Set-up (system tools, Wasm toolchain)"
scripts/setup-system.sh
wasm_toolchain

step "Build mlpow-node and mlpow-worker (debug; the first build takes a while)"
# The same build as scripts/test.sh (whole workspace, all targets): a subset
# would unify dependency features differently and rebuild half the tree
# every time one switches between the two commands.
cargo build --workspace --all-targets
bin="$CARGO_TARGET_DIR/debug"
step ""

pids=()
cleanup() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$bin/mlpow-node" --dev --rpc-port "$rpc_port" --no-prometheus &
pids+=($!)

# Wait until the RPC answers (the node compiles the runtime first).
for _ in $(seq 1 240); do
	if curl -s -m 1 -H 'Content-Type: application/json' \
		-d '{"id":1,"jsonrpc":"2.0","method":"system_health","params":[]}' \
		"http://127.0.0.1:$rpc_port" >/dev/null 2>&1; then
		break
	fi
	kill -0 "${pids[0]}" 2>/dev/null || { echo "mlpow-node exited" >&2; exit 1; }
	sleep 0.5
done

threads=()
[ -n "${MLPOW_THREADS:-}" ] && threads=(--threads "$MLPOW_THREADS")
"$bin/mlpow-worker" --node "ws://127.0.0.1:$rpc_port" "${threads[@]}" &
pids+=($!)

cat >&2 <<MSG

==> Dev chain running. RPC: ws://127.0.0.1:$rpc_port
    Polkadot.js Apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A$rpc_port#/explorer
    Ctrl-C stops both processes.

MSG
wait -n "${pids[@]}"
