#!/usr/bin/env bash
# Measures how long a debug `mlpow-node --dev` on a fresh database takes to
# answer RPC, as the tests and scripts/dev.sh start it.
# Usage: scripts/node-startup.sh [runs] (default 3)
#   MLPOW_WASM_CACHE=<dir>  the compiled-runtime cache to use (default: the
#                           scripts' shared one); an empty fresh directory
#                           measures a start that compiles the runtime.
# Run it beside `stress-ng --cpu 2` to measure a busy machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
runs="${1:-3}"
bin="$CARGO_TARGET_DIR/debug/mlpow-node"
[ -x "$bin" ] || { echo "build first: scripts/dev.sh or scripts/test.sh" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
p2p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for i in $(seq "$runs"); do
	log=$(mktemp)
	start=$(date +%s%N)
	"$bin" --dev --tmp --rpc-port "$port" --port "$p2p" --no-prometheus --no-mdns --no-telemetry >"$log" 2>&1 &
	pid=$!
	until curl -s -m 1 -H 'Content-Type: application/json' \
		-d '{"id":1,"jsonrpc":"2.0","method":"system_health"}' "http://127.0.0.1:$port" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.05
	done
	end=$(date +%s%N)
	kill -INT "$pid"
	wait "$pid" 2>/dev/null || true
	rm -f "$log"
	printf 'run %d: RPC ready after %.2f s (cache %s)\n' "$i" "$(echo "($end - $start) / 1000000000" | bc -l)" "$MLPOW_WASM_CACHE"
done
