#!/usr/bin/env bash
# Starts a development chain: one `mlpow-node --dev` (fresh, temporary
# database) and one `mlpow-worker` mining for it, until Ctrl-C.
#
# Usage: scripts/dev.sh [--useful]
#   --useful        the chain on puzzle v2 from genesis (`--chain dev-v2`)
#                   and the worker's job API on 127.0.0.1:$MLPOW_JOBS_PORT:
#                   send it int8 matrix products (clients/python) and it
#                   mines on them
#   MLPOW_RPC_PORT  node RPC port (default 9944)
#   MLPOW_JOBS_PORT job API port with --useful (default 9955)
#   MLPOW_THREADS   worker threads (default: all cores)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MLPOW_ROOT"

rpc_port="${MLPOW_RPC_PORT:-9944}"
jobs_port="${MLPOW_JOBS_PORT:-9955}"
chain=()
jobs=()
case "${1:-}" in
"") ;;
--useful)
	chain=(--chain dev-v2)
	jobs=(--jobs-api "127.0.0.1:$jobs_port")
	;;
*)
	echo "usage: scripts/dev.sh [--useful]" >&2
	exit 2
	;;
esac

step "Set-up (system tools, Wasm toolchain)"
scripts/setup-system.sh
wasm_toolchain

step "Build mlpow-node and mlpow-worker (debug; the first build takes a while)"
# The same build as scripts/test.sh (whole workspace, all targets): a subset
# would unify dependency features differently and rebuild half the tree
# every time one switches between the two commands.
lint_while_building # the same build as scripts/test.sh, so each reuses the other's
cargo build --workspace --all-targets --features mlpow-worker/test-hooks
bin="$CARGO_TARGET_DIR/debug"
step ""

pids=()
cleanup() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$bin/mlpow-node" --dev "${chain[@]}" --rpc-port "$rpc_port" --no-prometheus &
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
"$bin/mlpow-worker" --node "ws://127.0.0.1:$rpc_port" "${threads[@]}" "${jobs[@]}" &
pids+=($!)

cat >&2 <<MSG

==> Dev chain running. RPC: ws://127.0.0.1:$rpc_port
    Polkadot.js Apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A$rpc_port#/explorer
    Ctrl-C stops both processes.
MSG
if [ ${#jobs[@]} -gt 0 ]; then
	cat >&2 <<MSG
    Job API (useful mode): http://127.0.0.1:$jobs_port
      source scripts/env.sh && python_env
      python3 clients/python/examples/mlperf_tiny/run_layers.py --api http://127.0.0.1:$jobs_port
MSG
fi
echo >&2
wait -n "${pids[@]}"
