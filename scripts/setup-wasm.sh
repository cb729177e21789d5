#!/usr/bin/env bash
# Makes the wasm32-unknown-unknown target buildable, which the runtime (and the
# no_std check of the consensus primitives) needs. Idempotent, and quick when
# everything is already in place. Prints one line on stdout: the toolchain to
# build Wasm with, `default` or `debweb`; progress goes to stderr.
#
# 1. The normal way: `rustup target add wasm32-unknown-unknown` and
#    `rustup component add rust-src`.
# 2. Where the rustup server cannot be reached, Debian's Firefox toolchain
#    (rustc-web, a recent rustc with the standard library's source), linked
#    into rustup as `debweb`, plus a `core`/`alloc` for wasm32 built once from
#    that source (README.md, "Set-up", has the measurements).
#
# MLPOW_WASM_FALLBACK=1 skips step 1 (to test step 2 on a machine where
# rustup works).
set -euo pipefail

TARGET=wasm32-unknown-unknown
FALLBACK_TC=debweb
PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
SYSROOT_LIB=/usr/lib/rustlib/$TARGET/lib
STAMP=$SYSROOT_LIB/.mlpow-built-by

log() { printf 'setup-wasm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v rustup >/dev/null || die "rustup is required (https://rustup.rs); then run this again"

if [ -z "${MLPOW_WASM_FALLBACK:-}" ]; then
	# substrate-wasm-builder builds core/alloc for the runtime from source
	# (-Zbuild-std), so it needs rust-src as well as the target.
	has_target() { rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; }
	has_src() { [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]; }
	if has_target && has_src; then
		echo default
		exit 0
	fi
	log "adding $TARGET and rust-src with rustup"
	if timeout 300 rustup target add "$TARGET" >&2 && timeout 300 rustup component add rust-src >&2; then
		echo default
		exit 0
	fi
	log "rustup could not add $TARGET; falling back to Debian's rustc-web"
fi

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo "$@"
	else
		die "need root to run: $* (or install the $TARGET target with rustup)"
	fi
}

# 2a. Debian's packages.
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || die "no apt-get: install the $TARGET target with rustup instead"
	log "installing ${missing[*]}"
	as_root apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 2b. The toolchain, as rustup sees it.
if ! rustup toolchain list | grep -q "^$FALLBACK_TC"; then
	log "linking /usr as rustup toolchain $FALLBACK_TC"
	rustup toolchain link "$FALLBACK_TC" /usr >&2
fi

# 2c. A precompiled core/alloc for wasm32, matching this exact rustc.
version="$(rustup run "$FALLBACK_TC" rustc --version)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$version" ]; then
	log "building core and alloc for $TARGET with $version"
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	mkdir -p "$work/src"
	printf '[package]\nname = "sysroot"\nversion = "0.1.0"\nedition = "2021"\n[workspace]\n' >"$work/Cargo.toml"
	echo '#![no_std]' >"$work/src/lib.rs"
	(cd "$work" && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$work/target" rustup run "$FALLBACK_TC" \
		cargo build -q --release -Zbuild-std=core,alloc --target "$TARGET" >&2)
	as_root mkdir -p "$SYSROOT_LIB"
	as_root rm -f "$SYSROOT_LIB"/lib{core,alloc,compiler_builtins,rustc_std_workspace_core}-*.r*
	as_root cp "$work"/target/$TARGET/release/deps/lib{core,alloc,compiler_builtins}-*.r* "$SYSROOT_LIB/"
	echo "$version" | as_root tee "$STAMP" >/dev/null
fi
echo "$FALLBACK_TC"
