#!/usr/bin/env bash
# The RUSTC_WORKSPACE_WRAPPER of lint_while_building (scripts/env.sh): cargo
# runs `lint-wrapper.sh <rustc> <args>` for each of the workspace's own
# crates. Host builds go through clippy-driver, which compiles and lints
# (CLIPPY_ARGS holds `-D warnings`). Wasm builds (the runtime's, through
# substrate-wasm-builder, and the no_std check of the primitives) go to
# their rustc as they are: they may use another toolchain
# (scripts/setup-wasm.sh's fallback), which the host's clippy-driver is not.
set -euo pipefail
rustc="$1"
shift
for arg in "$@"; do
	case "$arg" in
	wasm32* | --target=wasm32*) exec "$rustc" "$@" ;;
	esac
done
exec "$MLPOW_CLIPPY_DRIVER" "$rustc" "$@"
