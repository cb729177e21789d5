# Settings shared by the project's scripts. Source it, don't run it.
#
# The cargo target directory lives outside the checkout, at a fixed path under
# $HOME, so that every clone (CI's fresh ones included) reuses one build.
# Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mlpow/target}"

MLPOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MLPOW_ROOT

# Every node the scripts and tests start keeps its compiled runtime here
# (wasmtime's cache), so only the first start after a runtime change pays
# for cranelift; the rest start in a second or two, also on a busy machine.
export MLPOW_WASM_CACHE="${MLPOW_WASM_CACHE:-$CARGO_TARGET_DIR/debug/wasm-cache}"

# target_dir_space: makes room for a build and says how much there is.
# A build of this workspace writes up to ~15 GB (a cold one, with line
# tables only); every checkout path gets its own copies of the
# workspace's crates, and cargo's incremental caches grow with each
# edit. CI builds each commit once, so it turns incremental off; below
# 20 GB free the incremental caches (rebuilt on demand) go first.
target_dir_space() {
	if [ "${CI:-}" = true ]; then
		export CARGO_INCREMENTAL=0
	fi
	mkdir -p "$CARGO_TARGET_DIR"
	local free_kb
	free_kb=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print $4 }')
	if [ "$free_kb" -lt $((20 * 1024 * 1024)) ] && [ -d "$CARGO_TARGET_DIR/debug/incremental" ]; then
		echo "under 20 GB free: removing cargo's incremental caches ($CARGO_TARGET_DIR/debug/incremental)"
		rm -rf "$CARGO_TARGET_DIR/debug/incremental"
		free_kb=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print $4 }')
	fi
	echo "disk: $((free_kb / 1024 / 1024)) GB free for $CARGO_TARGET_DIR ($(du -sh "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1) used)"
	if [ "$free_kb" -lt $((8 * 1024 * 1024)) ]; then
		echo "warning: under 8 GB free; a cold build needs ~15 GB. Free space, or point CARGO_TARGET_DIR at a larger disk." >&2
	fi
}

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

# lint_while_building: every cargo build that follows also runs clippy on
# the workspace's own crates, with warnings as errors: clippy-driver becomes
# cargo's RUSTC_WORKSPACE_WRAPPER (dependencies are built by plain rustc),
# and CLIPPY_ARGS holds what `cargo clippy -- -D warnings` would pass it.
# So lint and build share one compilation of every dependency, where a
# separate `cargo clippy` first compiled all of them a second time, in
# check mode (12.5 minutes of a cold run). scripts/test.sh and
# scripts/dev.sh both call it, so they share one build: cargo fingerprints
# the wrapper and CLIPPY_ARGS, and a build without them would recompile
# the workspace's crates.
# Wasm builds skip the lints (scripts/lint-wrapper.sh says why).
lint_while_building() {
	MLPOW_CLIPPY_DRIVER="$(rustc --print sysroot)/bin/clippy-driver"
	if [ ! -x "$MLPOW_CLIPPY_DRIVER" ]; then
		rustup component add clippy >&2
	fi
	export MLPOW_CLIPPY_DRIVER
	export RUSTC_WORKSPACE_WRAPPER="$MLPOW_ROOT/scripts/lint-wrapper.sh"
	export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
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

# python_env: installs numpy if needed (scripts/setup-python.sh) and puts it,
# the job client (clients/python) and the in-process miner (`mlpow`, as the
# last `cargo build` made it: gpu-worker/python) on PYTHONPATH. The wheel
# for other machines is scripts/python-wheel.sh's.
python_env() {
	local dir pkg profile="${1:-debug}"
	dir="$("$MLPOW_ROOT/scripts/setup-python.sh")"
	pkg="$CARGO_TARGET_DIR/python-$profile/mlpow"
	mkdir -p "$pkg"
	local module
	for module in "$MLPOW_ROOT"/gpu-worker/python/python/mlpow/*.py; do
		ln -sf "$module" "$pkg/"
	done
	ln -sf "$CARGO_TARGET_DIR/$profile/lib_native.so" "$pkg/_native.abi3.so"
	export PYTHONPATH="$dir:$MLPOW_ROOT/clients/python:${pkg%/mlpow}${PYTHONPATH:+:$PYTHONPATH}"
}
