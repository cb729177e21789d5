#!/usr/bin/env bash
# mlpow-node plus an mlpow-worker mining for it: the command zombienet runs
# for a mining node. All arguments go to the node; the worker connects to
# the node's --rpc-port.
#
# The script execs the node, so the node keeps this process's PID (the one
# zombienet kills and restarts). A watchdog stops the worker within a second
# of the node's exit, whether the node stopped cleanly or was SIGKILLed.
#
#   MLPOW_NODE_BIN, MLPOW_WORKER_BIN  the binaries (default: the debug build
#                                     in $CARGO_TARGET_DIR or ~/.cache/mlpow/target)
#   MLPOW_WORKER_THREADS              worker threads (default 1)
set -euo pipefail

target="${CARGO_TARGET_DIR:-$HOME/.cache/mlpow/target}"
node_bin="${MLPOW_NODE_BIN:-$target/debug/mlpow-node}"
worker_bin="${MLPOW_WORKER_BIN:-$target/debug/mlpow-worker}"

rpc_port=9944
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	case "${args[i]}" in
	--help | -h | --version | -V) exec "$node_bin" "$@" ;; # zombienet probes the CLI
	--rpc-port) rpc_port="${args[i + 1]}" ;;
	--rpc-port=*) rpc_port="${args[i]#--rpc-port=}" ;;
	esac
done

node_pid=$$
# Alive, and not a zombie waiting to be reaped (kill -0 succeeds on those).
alive() {
	kill -0 "$1" 2>/dev/null && ! grep -qs '^[0-9]* (.*) Z ' "/proc/$1/stat"
}
(
	# The worker waits for the node's RPC by itself (it retries with backoff).
	"$worker_bin" --node "ws://127.0.0.1:$rpc_port" --threads "${MLPOW_WORKER_THREADS:-1}" --report-secs 10 &
	worker=$!
	while alive "$node_pid" && alive "$worker"; do
		sleep 1
	done
	kill -TERM "$worker" 2>/dev/null || true
) &
exec "$node_bin" "$@"
