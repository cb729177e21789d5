# Settings shared by the project's scripts. Source it, don't run it.
#
# The cargo target directory lives outside the checkout, at a fixed path under
# $HOME, so that every clone (CI's fresh ones included) reuses one build.
# Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mlpow/target}"

MLPOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MLPOW_ROOT

# step NAME: prints a heading and remembers when the step began.
step() {
	if [ -n "${_step_name:-}" ]; then
		printf '==> %s: done in %ss\n' "$_step_name" "$((SECONDS - _step_start))"
	fi
	_step_name="$1"
	_step_start=$SECONDS
	[ -n "$1" ] && printf '\n==> %s\n' "$1"
	return 0
}

# wasm_toolchain: makes wasm32-unknown-unknown buildable (see
# scripts/setup-wasm.sh) and exports WASM_BUILD_TOOLCHAIN for
# substrate-wasm-builder when a non-default toolchain is needed. Sets
# WASM_CARGO to the cargo invocation for direct wasm32 builds.
wasm_toolchain() {
	local tc
	tc="$("$MLPOW_ROOT/scripts/setup-wasm.sh")"
	if [ "$tc" = default ]; then
		unset WASM_BUILD_TOOLCHAIN
		WASM_CARGO=(cargo)
	else
		export WASM_BUILD_TOOLCHAIN="$tc"
		WASM_CARGO=(cargo "+$tc")
	fi
}

# nvrtc_library: installs NVRTC if needed (scripts/setup-nvrtc.sh) and puts
# it on LD_LIBRARY_PATH, for the worker's kernel-compilation test.
nvrtc_library() {
	local lib
	lib="$("$MLPOW_ROOT/scripts/setup-nvrtc.sh")"
	case ":${LD_LIBRARY_PATH:-}:" in
	*":$lib:"*) ;;
	*) export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
	esac
}

# python_env: installs numpy if needed (scripts/setup-python.sh) and puts it
# and the job client (clients/python) on PYTHONPATH.
python_env() {
	local dir
	dir="$("$MLPOW_ROOT/scripts/setup-python.sh")"
	export PYTHONPATH="$dir:$MLPOW_ROOT/clients/python${PYTHONPATH:+:$PYTHONPATH}"
}
