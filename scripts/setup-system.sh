#!/usr/bin/env bash
# Installs the system tools the build needs beyond Rust: `protoc` (the
# network stack's litep2p compiles protobuf definitions at build time).
# Idempotent; uses apt-get (as root or through passwordless sudo) where a
# tool is missing, and otherwise says what to install.
set -euo pipefail

log() { printf 'setup-system: %s\n' "$*" >&2; }

if command -v protoc >/dev/null; then
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	log "error: protoc not found; install the protobuf compiler (e.g. 'brew install protobuf', 'dnf install protobuf-compiler')"
	exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	as_root=(sudo)
else
	log "error: protoc not found and no root to install it: run 'sudo apt-get install protobuf-compiler'"
	exit 1
fi
log "installing protobuf-compiler"
"${as_root[@]}" apt-get update -qq >&2 || true
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler >&2
